import '@mantine/core/styles.css';
import './global.css';
import { MantineProvider } from '@mantine/core';
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { RouterProvider } from 'react-router';
import { OkSchema } from '@keyturn/shared';
import { request } from '../lib/api-client';
import { isApiError } from '../lib/api-error';
import { csrf } from '../lib/csrf';
import { sessionEvents } from '../lib/session-events';
import { createAppRouter } from './router';
import { cssVariablesResolver, theme } from './theme';

/** A dead session anywhere (401 UNAUTHENTICATED, or 409 KEY_VERSION_STALE) ends it everywhere. */
function onAnyError(error: unknown) {
  if (!isApiError(error)) return;
  if (error.code === 'UNAUTHENTICATED') sessionEvents.end('expired');
  else if (error.code === 'KEY_VERSION_STALE') sessionEvents.end('stale');
}

function makeQueryClient() {
  return new QueryClient({
    queryCache: new QueryCache({ onError: onAnyError }),
    mutationCache: new MutationCache({ onError: onAnyError }),
    defaultOptions: {
      queries: {
        // Retry only what a retry can fix: the network or a 5xx.
        retry: (count, e) => count < 2 && (!isApiError(e) || e.status === 0 || e.status >= 500),
        refetchOnWindowFocus: false,
      },
      mutations: { retry: false },
    },
  });
}

export function App() {
  const [queryClient] = useState(makeQueryClient);
  const [router] = useState(createAppRouter);

  useEffect(() => {
    let ending = false;
    return sessionEvents.subscribe(async (reason) => {
      if (ending) return;
      ending = true;
      try {
        // A stale session is still a valid cookie: end it on the server too, or /login would bounce back.
        if (reason === 'stale' && csrf.get()) {
          await request('/api/auth/logout', { method: 'POST', schema: OkSchema }).catch(() => undefined);
        }
        csrf.set(null);
        await queryClient.cancelQueries();
        queryClient.clear();
        await router.navigate('/login', { replace: true, state: { notice: reason } });
      } finally {
        ending = false;
      }
    });
  }, [queryClient, router]);

  return (
    <MantineProvider theme={theme} cssVariablesResolver={cssVariablesResolver} defaultColorScheme="light">
      <QueryClientProvider client={queryClient}>
        <RouterProvider router={router} />
      </QueryClientProvider>
    </MantineProvider>
  );
}
