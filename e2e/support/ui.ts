import { type Locator, type Page, expect } from '@playwright/test';
import type { Credentials } from './api';

/**
 * Browser steps shared by specs. Selectors are accessible roles and names from apps/web/src.
 */

/**
 * A text or password input by its accessible name. (getByLabel with exact: true would also
 * match the " *" Mantine appends to required labels; the accessible name leaves it out.)
 */
export const field = (scope: Page | Locator, name: string): Locator => scope.getByRole('textbox', { name, exact: true });

/** The header's account menu button; its presence means "signed in". */
export const accountMenu = (page: Page) => page.getByRole('button', { name: 'Account menu' });

export async function expectSignedIn(page: Page, email: string): Promise<void> {
  await expect(accountMenu(page)).toBeVisible();
  await expect(accountMenu(page)).toContainText(email);
}

export async function expectOnSignIn(page: Page): Promise<void> {
  await expect(page.getByRole('heading', { name: 'Sign in', level: 1 })).toBeVisible();
  await expect(page).toHaveURL(/\/login$/);
}

export async function signIn(page: Page, creds: Credentials): Promise<void> {
  if (!/\/login$/.test(page.url())) await page.goto('/login');
  await field(page, 'Email').fill(creds.email);
  await field(page, 'Password').fill(creds.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expectSignedIn(page, creds.email);
}

export async function signOut(page: Page): Promise<void> {
  await accountMenu(page).click();
  await page.getByRole('menuitem', { name: 'Sign out' }).click();
  await expectOnSignIn(page);
  await expect(page.getByRole('status').filter({ hasText: 'You have signed out.' })).toBeVisible();
}
