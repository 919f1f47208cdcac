import { Center, Loader } from '@mantine/core';
import type { ReactNode } from 'react';
import { Navigate, Outlet, useLocation } from 'react-router';
import { ErrorBlock } from '../components/query-state';
import { useMe } from '../features/auth/api/auth.api';
import { useSetupStatus } from '../features/setup/api/setup.api';
import { NotAllowedPage } from './pages';

function FullPageLoader() {
  return (
    <Center mih="100vh" role="status" aria-label="Loading">
      <Loader aria-hidden />
    </Center>
  );
}

function FullPageError({ error, onRetry }: { error: unknown; onRetry: () => void }) {
  return (
    <Center mih="100vh" p="md" component="main">
      <div style={{ maxWidth: 480, width: '100%' }}>
        <h1 style={{ fontSize: '1.4rem' }}>Keyturn is not reachable</h1>
        <ErrorBlock error={error} onRetry={onRetry} title="Could not reach the server" />
      </div>
    </Center>
  );
}

/** Until the first admin exists, every page leads to first-run setup (and setup leads nowhere after). */
export function SetupGate() {
  const setup = useSetupStatus();
  const { pathname } = useLocation();
  if (setup.isPending) return <FullPageLoader />;
  if (setup.isError) return <FullPageError error={setup.error} onRetry={() => setup.refetch()} />;
  if (setup.data.needed && pathname !== '/setup') return <Navigate to="/setup" replace />;
  if (!setup.data.needed && pathname === '/setup') return <Navigate to="/login" replace />;
  return <Outlet />;
}

/** Signed-in pages; others go to the sign-in page and come back afterwards. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <FullPageLoader />;
  if (me.isError) return <FullPageError error={me.error} onRetry={() => me.refetch()} />;
  if (!me.data) return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  return <>{children}</>;
}

/** Admin pages: non-admins get a plain "not allowed" page, and the API refuses them anyway. */
export function RequireAdmin() {
  const me = useMe();
  if (me.data?.user.role !== 'admin') return <NotAllowedPage />;
  return <Outlet />;
}

/** Sign-in, register and setup: a signed-in user goes straight to where they were headed. */
export function GuestOnly() {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <FullPageLoader />;
  if (me.data) {
    const from = (location.state as { from?: string } | null)?.from;
    return <Navigate to={from?.startsWith('/') ? from : '/'} replace />;
  }
  return <Outlet />;
}
