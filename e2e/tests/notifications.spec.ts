import {
  approveRotation,
  completeSetup,
  deliveries,
  ensureSetup,
  inbox,
  markAllRead,
  markRead,
  registerUser,
  rejectRotation,
  requestRotation,
} from '../support/api';
import { A11yReport } from '../support/a11y';
import { expect, skipWithoutChromium, test } from '../support/fixtures';
import { type StartedServer, freePort, startApiServer } from '../support/server';
import { startFakeSmtp } from '../support/smtp';
import {
  INBOX_POLL_TIMEOUT,
  adminRow,
  expectSameDocument,
  expectUnread,
  field,
  inboxList,
  markDocument,
  newPersonPage,
  openBell,
  signInFast,
} from '../support/ui';

skipWithoutChromium();

/**
 * The in-app inbox (issue 12): nobody waits on a page to learn that something needs them. The
 * bell polls, so what happens elsewhere (here: through the API, as another person) reaches an
 * open page without a reload.
 */

const CONSOLE = /^\/admin\/key_rotation_management([?#].*)?$/;

async function verdict(report: A11yReport): Promise<void> {
  await test.info().attach('axe-findings.json', { body: report.json(), contentType: 'application/json' });
  expect(report.blocking, report.summary()).toEqual([]);
}

/**
 * The email test's own server: SMTP_URL points at a port where, at first, nothing listens, and
 * one attempt is all a delivery gets, so a notification email is dead within a second or two.
 * It starts now, in the background (its database takes ~30 s), while the inbox tests run.
 */
const MAIL_FROM = 'Keyturn e2e <keyturn@keyturn.test>';
let mailServer: Promise<{ server: StartedServer; smtpPort: number }> | null = null;
test.beforeAll(() => {
  mailServer = (async () => {
    const smtpPort = await freePort();
    const server = await startApiServer({
      label: 'e2e-mail',
      env: { SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, MAIL_FROM, NOTIFY_MAX_ATTEMPTS: '1', NOTIFY_INTERVAL_SECONDS: '1' },
    });
    return { server, smtpPort };
  })();
  mailServer.catch(() => undefined); // reported by the test that awaits it
});
test.afterAll(async () => {
  const started = await mailServer?.catch(() => null);
  await started?.server.stop();
});

test('an admin sees a new rotation request on the bell without reloading, follows it to the console and marks it read', async ({
  page,
  request,
}) => {
  const admin = await ensureSetup(request);
  const user = await registerUser(request);
  // Every spec's requests reach the shared admin's inbox: start from nothing unread.
  await markAllRead(request, admin);

  await signInFast(page, admin, '/admin/health');
  await expectUnread(page, 0);
  await markDocument(page);

  const token = await requestRotation(request, user, 'New laptop; rotating my key to be safe.');

  await test.step('the badge shows the new item without a reload', async () => {
    await expectUnread(page, 1, { timeout: INBOX_POLL_TIMEOUT });
    await expectSameDocument(page);
  });

  await test.step('the popover lists it, linking to the rotation console; "Mark as read" clears the badge', async () => {
    const dialog = await openBell(page);
    const item = dialog.getByRole('list', { name: 'Unread notifications' }).getByRole('listitem');
    await expect(item).toHaveCount(1);
    await expect(item.getByText('Key rotation requested', { exact: true })).toBeVisible();
    await expect(item).toContainText(user.email);
    const link = item.getByRole('link', { name: 'Open rotation management' });
    expect(new URL((await link.getAttribute('href')) ?? '', page.url()).pathname).toMatch(CONSOLE);

    await item.getByRole('button', { name: 'Mark as read' }).click();
    await expectUnread(page, 0);
    await expect(dialog.getByText('You have no unread notifications.')).toBeVisible();
    expect((await inbox(request, admin, { unread: true })).unread).toBe(0);
    await dialog.getByRole('link', { name: 'See all notifications' }).click();
  });

  await test.step('the inbox keeps it as read, and its link opens the console on the request', async () => {
    await expect(page).toHaveURL(/\/notifications$/);
    await expect(page.getByRole('heading', { name: 'Notifications', level: 1 })).toBeVisible();
    const item = inboxList(page).getByRole('listitem').first();
    await expect(item).toHaveAttribute('data-unread', 'false');
    await expect(item.getByRole('button', { name: 'Mark as read' })).toHaveCount(0);
    await item.getByRole('link', { name: 'Open rotation management' }).click();
    await expect(page).toHaveURL(/\/admin\/key_rotation_management/);
    await expect(adminRow(page, user.email).getByTestId('fingerprint')).toHaveText(token.fingerprint);
    // Client-side navigation all along.
    await expectSameDocument(page);
  });
});

test("a user's open inbox shows the approval without reloading", async ({ page, request }) => {
  const admin = await ensureSetup(request);
  const user = await registerUser(request);
  const token = await requestRotation(request, user, 'Rotating after a phishing test.');

  await signInFast(page, user, '/notifications');
  await expect(page.getByRole('heading', { name: 'Notifications', level: 1 })).toBeVisible();
  await expect(page.getByTestId('inbox-summary')).toHaveText('No notifications yet.');
  await expectUnread(page, 0);
  await markDocument(page);

  const approval = await approveRotation(request, admin, token.id);

  const item = inboxList(page).getByRole('listitem');
  await test.step('the approval appears in the list and on the bell', async () => {
    await expect(item).toHaveCount(1, { timeout: INBOX_POLL_TIMEOUT });
    await expect(item.getByText('Your key rotation was approved', { exact: true })).toBeVisible();
    await expect(item).toHaveAttribute('data-unread', 'true');
    await expectUnread(page, 1);
    await expectSameDocument(page);
    // The temporary password is for the administrator to hand over, never in a notification.
    await expect(item).not.toContainText(approval.tempPassword);
    const link = item.getByRole('link', { name: 'Open the key rotation page' });
    expect(new URL((await link.getAttribute('href')) ?? '', page.url()).pathname).toBe('/key_rotation_with_token');
  });

  await test.step('"Mark as read" on the page clears the bell', async () => {
    await item.getByRole('button', { name: 'Mark as read' }).click();
    await expect(item).toHaveAttribute('data-unread', 'false');
    await expectUnread(page, 0);
    await expect(page.getByRole('button', { name: 'Mark all as read' })).toBeDisabled();
    expect((await inbox(request, user)).unread).toBe(0);
  });
});

test('notifications pages pass axe: inbox, bell popover, admin delivery page', async ({ page, browser, request, server }) => {
  const admin = await ensureSetup(request);
  const user = await registerUser(request);
  const report = new A11yReport();

  // A rejection (with its reason) and an approval: one item read, one unread.
  const first = await requestRotation(request, user, 'Old laptop');
  await rejectRotation(request, admin, first.id, 'Please ask in person first.');
  const second = await requestRotation(request, user, 'New laptop');
  await approveRotation(request, admin, second.id);
  await expect.poll(async () => (await inbox(request, user)).total, { timeout: INBOX_POLL_TIMEOUT }).toBe(2);
  const rejected = (await inbox(request, user)).items.find((i) => i.event === 'rotation.rejected');
  expect(rejected, 'the rejection reached the user').toBeDefined();
  await markRead(request, user, rejected!.id);

  await signInFast(page, user, '/notifications');
  await expect(inboxList(page).getByRole('listitem')).toHaveCount(2);
  await report.scan(page, 'notifications (one read, one unread)');
  const dialog = await openBell(page);
  await expect(dialog.getByRole('listitem')).toHaveCount(1);
  await report.scan(page, 'bell popover', { include: '[role="dialog"]' });
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();

  const adminPage = await newPersonPage(browser, server.baseURL);
  await signInFast(adminPage, admin, '/admin/key_rotation_management');
  await adminPage.getByRole('button', { name: 'Admin menu' }).click();
  await adminPage.getByRole('menuitem', { name: 'Notification delivery' }).click();
  await expect(adminPage).toHaveURL(/\/admin\/notifications$/);
  await expect(adminPage.getByRole('heading', { name: 'Notification delivery', level: 1 })).toBeVisible();
  await expect(adminPage.getByTestId('inbox-channel-state')).toHaveText('On');
  // The e2e server has no SMTP_URL: email is off, and the test email says so instead of sending.
  await expect(adminPage.getByTestId('email-channel-state')).toHaveText('Not configured');
  await expect(adminPage.getByTestId('queue-summary')).toBeVisible();
  await report.scan(adminPage, 'notification delivery');

  await field(adminPage, 'Send to (optional)').fill('not an address');
  await adminPage.getByRole('button', { name: 'Send test email' }).click();
  await expect(field(adminPage, 'Send to (optional)')).toHaveAttribute('aria-invalid', 'true');
  await field(adminPage, 'Send to (optional)').fill('');
  await adminPage.getByRole('button', { name: 'Send test email' }).click();
  const result = adminPage.getByTestId('test-email-result');
  await expect(result).toContainText('Test email failed');
  await expect(adminPage.getByTestId('test-email-response')).not.toBeEmpty();
  await adminPage.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'All' });
  await expect(adminPage.getByTestId('queue-summary')).toBeVisible();
  await report.scan(adminPage, 'notification delivery (test email refused, all deliveries)');
  await adminPage.context().close();

  await verdict(report);
});

test('email: the admin page shows the failure, a dead email is re-sent once the mail server is back, and the test email reports its answer', async ({
  browser,
  playwright,
}) => {
  test.setTimeout(150_000); // the mail server's Keyturn may still be initialising its database
  if (!mailServer) throw new Error('the mail server was not started');
  const { server: srv, smtpPort } = await mailServer;
  const api = await playwright.request.newContext({ baseURL: srv.baseURL });
  const report = new A11yReport();
  try {
    const admin = await completeSetup(api, { setupCode: srv.setupCode });
    const user = await registerUser(api);
    const reason = `Canary reason ${crypto.randomUUID()}`;
    await requestRotation(api, user, reason);

    const isDead = async () =>
      (await deliveries(api, admin, 'dead')).some((d) => d.event === 'rotation.requested' && d.recipient === admin.email);
    await expect.poll(isDead, { timeout: 20_000, message: 'the email to the admin is dead (nothing listens on the SMTP port)' }).toBe(true);

    const page = await newPersonPage(browser, srv.baseURL);
    await signInFast(page, admin, '/admin/notifications');
    const table = page.getByRole('table', { name: 'Outgoing deliveries' });
    const row = table.getByRole('row').filter({ hasText: 'Rotation requested' });

    await test.step('the page shows the configured channel, its last error and the dead email', async () => {
      await expect(page.getByTestId('email-channel-state')).toHaveText('Configured');
      await expect(page.getByTestId('email-from')).toHaveText(MAIL_FROM);
      await expect(page.getByTestId('email-last-success')).toHaveText('Never');
      await expect(page.getByTestId('email-last-error')).toContainText('ECONNREFUSED');
      await expect(page.getByTestId('queue-count-dead')).not.toHaveText('0');
      await expect(row.getByTestId('delivery-status')).toHaveText('Dead');
      await expect(row).toContainText(admin.email);
      await expect(row).toContainText('ECONNREFUSED');
      await report.scan(page, 'notification delivery: email configured, a dead email');
    });

    await test.step('while the mail server is down, the test email reports why it failed', async () => {
      await page.getByRole('button', { name: 'Send test email' }).click();
      await expect(page.getByTestId('test-email-result')).toContainText('Test email failed');
      await expect(page.getByTestId('test-email-response')).toContainText('ECONNREFUSED');
      await report.scan(page, 'notification delivery: test email failed');
    });

    const smtp = await startFakeSmtp(smtpPort);
    try {
      await test.step('once it is back, "Re-send" delivers the dead email', async () => {
        await row.getByRole('button', { name: `Re-send rotation requested to ${admin.email}` }).click();
        await expect(page.getByRole('status').filter({ hasText: `Queued again: rotation requested to ${admin.email}.` })).toBeVisible();
        // The dispatcher runs every second; the page polls every 15 s, so ask for the Sent list once it is.
        const isSent = async () =>
          (await deliveries(api, admin, 'sent')).some((d) => d.event === 'rotation.requested' && d.recipient === admin.email);
        await expect.poll(isSent, { timeout: 15_000, message: 'the re-sent email is delivered' }).toBe(true);
        await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Sent' });
        await expect(row.getByTestId('delivery-status')).toHaveText('Sent');
        await expect(row.getByRole('button', { name: /^Re-send/ })).toHaveCount(0);
        const mail = smtp.received.find((m) => m.to.includes(admin.email) && m.data.includes('Key rotation requested'));
        expect(mail, 'the mail server received the notification').toBeDefined();
        expect(mail!.data).toContain(user.email);
        // The reason a user typed stays in the console; never in an email.
        expect(mail!.data).not.toContain(reason);
      });

      await test.step('the test email shows the mail server\'s answer, and the channel its success', async () => {
        await page.getByRole('button', { name: 'Send test email' }).click();
        await expect(page.getByTestId('test-email-result')).toContainText('Test email sent');
        await expect(page.getByTestId('test-email-response')).toContainText(/^250 /);
        expect(smtp.received.some((m) => m.to.includes(admin.email) && m.data.includes('[Keyturn] Test email'))).toBe(true);
        await expect(page.getByTestId('email-last-success')).not.toHaveText('Never');
        await report.scan(page, 'notification delivery: test email sent, sent deliveries');
      });
    } finally {
      await smtp.close();
    }
    await page.context().close();
    await verdict(report);
  } finally {
    await api.dispose();
  }
});
