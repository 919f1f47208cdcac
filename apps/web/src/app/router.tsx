import { createBrowserRouter, Navigate, Outlet } from 'react-router';
import { AccountPage } from '../features/account/components/account-page';
import { AdminAccountsPage } from '../features/admin-accounts/components/admin-accounts-page';
import { AdminAuditPage } from '../features/admin-audit/components/admin-audit-page';
import { AdminHealthPage } from '../features/admin-health/components/admin-health-page';
import { AdminNotificationsPage } from '../features/admin-notifications/components/admin-notifications-page';
import { AdminRotationPage } from '../features/admin-rotation/components/admin-rotation-page';
import { LoginPage } from '../features/auth/components/login-page';
import { RegisterPage } from '../features/auth/components/register-page';
import { ForgotPasswordPage } from '../features/recovery/components/forgot-password-page';
import { NotificationsPage } from '../features/notifications/components/notifications-page';
import { RecoverPage } from '../features/recovery/components/recover-page';
import { ExecuteRotationPage } from '../features/rotation/components/execute-rotation-page';
import { RotationRequestPage } from '../features/rotation/components/rotation-request-page';
import { SetupPage } from '../features/setup/components/setup-page';
import { VaultPage } from '../features/vault/components/vault-page';
import { AppLayout } from './app-layout';
import { GuestOnly, RequireAdmin, RequireAuth, SetupGate } from './guards';
import { NotFoundPage } from './pages';
import { PublicLayout } from './public-layout';
import { RouteError } from './route-error';

export function createAppRouter() {
  return createBrowserRouter([
    {
      element: <Outlet />,
      errorElement: <RouteError />,
      children: [
        {
          element: <SetupGate />,
          children: [
            {
              element: <PublicLayout />,
              children: [
                { path: '/setup', element: <SetupPage /> },
                {
                  element: <GuestOnly />,
                  children: [
                    { path: '/login', element: <LoginPage /> },
                    { path: '/register', element: <RegisterPage /> },
                    { path: '/forgot_password', element: <ForgotPasswordPage /> },
                    { path: '/recover', element: <RecoverPage /> },
                  ],
                },
              ],
            },
            {
              element: (
                <RequireAuth>
                  <AppLayout />
                </RequireAuth>
              ),
              children: [
                { index: true, element: <VaultPage /> },
                { path: '/rotation_request', element: <RotationRequestPage /> },
                { path: '/key_rotation_with_token', element: <ExecuteRotationPage /> },
                { path: '/account', element: <AccountPage /> },
                { path: '/notifications', element: <NotificationsPage /> },
                {
                  path: '/admin',
                  element: <RequireAdmin />,
                  children: [
                    { index: true, element: <Navigate to="/admin/key_rotation_management" replace /> },
                    { path: 'key_rotation_management', element: <AdminRotationPage /> },
                    { path: 'health', element: <AdminHealthPage /> },
                    { path: 'audit', element: <AdminAuditPage /> },
                    { path: 'admins', element: <AdminAccountsPage /> },
                    { path: 'notifications', element: <AdminNotificationsPage /> },
                    { path: '*', element: <NotFoundPage /> },
                  ],
                },
                { path: '*', element: <NotFoundPage /> },
              ],
            },
          ],
        },
      ],
    },
  ]);
}

export type AppRouter = ReturnType<typeof createAppRouter>;
