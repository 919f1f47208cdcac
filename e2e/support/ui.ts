import { type Browser, type BrowserContextOptions, type Locator, type Page, expect } from '@playwright/test';
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

/**
 * Signs the browser context in without typing: the login request goes through `page.request`,
 * which shares the context's cookie jar, then the page opens `path`. For specs whose subject is
 * not the sign-in form itself.
 */
export async function signInFast(page: Page, creds: Credentials, path = '/'): Promise<void> {
  const res = await page.request.post('/api/auth/login', { data: { email: creds.email, password: creds.password } });
  if (res.status() !== 200) throw new Error(`sign-in of ${creds.email} failed: HTTP ${res.status()} ${await res.text()}`);
  await page.goto(path);
  await expectSignedIn(page, creds.email);
}

/** A page in a new, separate browser context (another person: own cookies and storage). */
export async function newPersonPage(browser: Browser, baseURL: string, opts: BrowserContextOptions = {}): Promise<Page> {
  const context = await browser.newContext({ baseURL, ...opts });
  return context.newPage();
}

/** The admin console's list item for one user's request. */
export const adminRow = (page: Page, email: string): Locator =>
  page.getByRole('listitem', { name: `Request from ${email}`, exact: true });

/** The admin console's list item for one user's account recovery request. */
export const adminRecoveryRow = (page: Page, email: string): Locator =>
  page.getByRole('listitem', { name: `Recovery request from ${email}`, exact: true });

/** The console's kind filter: all requests, key rotations only, or account recoveries only. */
export async function filterAdminKind(page: Page, kind: 'All' | 'Rotation' | 'Recovery'): Promise<void> {
  await page.getByRole('combobox', { name: 'Kind', exact: true }).selectOption({ label: kind });
}

/** Opens a tab of /admin/key_rotation_management (its name may carry a count badge). */
export async function openAdminTab(page: Page, tab: 'Pending' | 'Approved' | 'Awaiting finalization' | 'History'): Promise<void> {
  const t = page.getByRole('tab', { name: new RegExp(`^${tab}`) });
  await t.click();
  await expect(t).toHaveAttribute('aria-selected', 'true');
}

/**
 * Waits until the screen is still: no loader or spinner, no running CSS transition or
 * animation (a modal fading in has half-transparent colours, which axe would call low contrast).
 */
export async function settle(page: Page): Promise<void> {
  await page.waitForFunction(
    () =>
      !document.querySelector('[role="status"][aria-label="Loading"], [role="status"][aria-busy="true"], .mantine-Loader-root') &&
      document.getAnimations().every((a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity),
    undefined,
    { timeout: 10_000 },
  );
}

/** The vault lists exactly these secrets, and revealing each shows its value byte for byte. */
export async function expectSecretValues(page: Page, secrets: { name: string; value: string }[]): Promise<void> {
  const list = page.getByRole('list', { name: 'Secrets' });
  await expect(list.getByRole('listitem')).toHaveCount(secrets.length);
  for (const s of secrets) {
    const item = list.getByRole('listitem', { name: s.name, exact: true });
    await item.getByRole('button', { name: `Reveal ${s.name}` }).click();
    const value = item.getByTestId('secret-value');
    await expect(value).toBeVisible();
    expect(await value.textContent()).toBe(s.value);
  }
}

/** Types a wrong password on the sign-in page and expects the refusal (still signed out). */
export async function expectSignInRefused(page: Page, creds: Credentials): Promise<void> {
  if (!/\/login$/.test(page.url())) await page.goto('/login');
  await field(page, 'Email').fill(creds.email);
  await field(page, 'Password').fill(creds.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect(page.getByRole('alert')).toHaveText('That email and password do not match an account.');
  await expect(accountMenu(page)).toHaveCount(0);
}

// Notifications -------------------------------------------------------------------------------

/**
 * The longest a new notification may take to show without a reload: the bell polls every 10 s
 * (apps/web notifications.api.ts), plus the outbox's dispatch and a slow machine's margin.
 */
export const INBOX_POLL_TIMEOUT = 25_000;

/** The header's bell; its name carries the unread count ("Notifications, 3 unread"). */
export const notificationBell = (page: Page): Locator => page.getByRole('button', { name: /^Notifications(, \d+ unread)?$/ });

/** The bell names the unread count, and its badge shows it (none when 0). */
export async function expectUnread(page: Page, n: number, opts: { timeout?: number } = {}): Promise<void> {
  const bell = notificationBell(page);
  await expect(bell).toHaveAccessibleName(n > 0 ? `Notifications, ${n} unread` : 'Notifications', opts);
  await expect(bell).toHaveText(n > 0 ? String(Math.min(n, 99)) + (n > 99 ? '+' : '') : '');
}

/** Opens the bell's popover: the newest unread items, "Mark all as read", "See all notifications". */
export async function openBell(page: Page): Promise<Locator> {
  await notificationBell(page).click();
  const dialog = page.getByRole('dialog', { name: 'Notifications', exact: true });
  await expect(dialog).toBeVisible();
  return dialog;
}

/** The /notifications page's list (exact: the bell's popover has an "Unread notifications" list). */
export const inboxList = (page: Page): Locator => page.getByRole('list', { name: 'Notifications', exact: true });

/**
 * Marks the document so a later check can tell it was never reloaded (a reload or a full
 * navigation starts a new document without the mark).
 */
export async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { __e2eSameDocument?: boolean }).__e2eSameDocument = true;
  });
}

export async function expectSameDocument(page: Page): Promise<void> {
  const same = await page.evaluate(() => (window as unknown as { __e2eSameDocument?: boolean }).__e2eSameDocument === true);
  expect(same, 'the page was reloaded').toBe(true);
}
