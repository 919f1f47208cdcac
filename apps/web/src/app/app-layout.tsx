import { AppShell, Badge, Burger, Button, Group, Menu, NavLink, ScrollArea, Text, UnstyledButton } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useEffect, useRef } from 'react';
import { Link, Outlet, useLocation } from 'react-router';
import { RecoveryNotices } from '../features/account/components/recovery-notices';
import { useLogout, useMe } from '../features/auth/api/auth.api';
import { NotificationBell } from '../features/notifications/components/notification-bell';

const USER_LINKS = [
  { to: '/', label: 'Vault' },
  { to: '/rotation_request', label: 'Rotation requests' },
  { to: '/key_rotation_with_token', label: 'Run key rotation' },
  { to: '/account', label: 'Account' },
];
const ADMIN_LINKS = [
  { to: '/admin/key_rotation_management', label: 'Rotation management' },
  { to: '/admin/health', label: 'System health' },
  { to: '/admin/audit', label: 'Audit log' },
  { to: '/admin/admins', label: 'Administrators' },
  { to: '/admin/notifications', label: 'Notification delivery' },
];

export function AppLayout() {
  const me = useMe();
  const logout = useLogout();
  const { pathname } = useLocation();
  const [navOpen, nav] = useDisclosure(false);
  const mainRef = useRef<HTMLElement>(null);
  const isAdmin = me.data?.user.role === 'admin';
  const email = me.data?.user.email ?? '';

  // On navigation: close the phone menu and move focus to the new page's content.
  const first = useRef(true);
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs on every navigation, keyed by pathname.
  useEffect(() => {
    nav.close();
    if (first.current) {
      first.current = false;
      return;
    }
    mainRef.current?.focus();
  }, [pathname, nav.close]);

  const link = (l: { to: string; label: string }) => (
    <NavLink
      key={l.to}
      component={Link}
      to={l.to}
      label={l.label}
      active={l.to === '/' ? pathname === '/' : pathname.startsWith(l.to)}
      aria-current={(l.to === '/' ? pathname === '/' : pathname.startsWith(l.to)) ? 'page' : undefined}
    />
  );

  return (
    <AppShell
      header={{ height: 60 }}
      navbar={{ width: 230, breakpoint: 'sm', collapsed: { mobile: !navOpen } }}
      padding={{ base: 'sm', sm: 'lg' }}
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={navOpen} onClick={nav.toggle} hiddenFrom="sm" size="sm" aria-label={navOpen ? 'Close navigation' : 'Open navigation'} />
            <UnstyledButton component={Link} to="/" aria-label="Keyturn home">
              <Group gap={8} wrap="nowrap">
                <img src="/favicon.svg" alt="" width={28} height={28} />
                <Text fw={800} size="lg" c="indigo.9" visibleFrom="xs">
                  Keyturn
                </Text>
              </Group>
            </UnstyledButton>
          </Group>
          <Group gap="xs" wrap="nowrap">
            <NotificationBell />
            {isAdmin ? (
              <Menu position="bottom-end" withArrow>
                <Menu.Target>
                  <Button variant="subtle" aria-label="Admin menu">
                    Admin
                  </Button>
                </Menu.Target>
                <Menu.Dropdown>
                  <Menu.Label>Administration</Menu.Label>
                  <Menu.Item component={Link} to="/admin/key_rotation_management">Key Rotation</Menu.Item>
                  <Menu.Item component={Link} to="/admin/health">System health</Menu.Item>
                  <Menu.Item component={Link} to="/admin/audit">Audit log</Menu.Item>
                  <Menu.Item component={Link} to="/admin/admins">Administrators</Menu.Item>
                  <Menu.Item component={Link} to="/admin/notifications">Notification delivery</Menu.Item>
                </Menu.Dropdown>
              </Menu>
            ) : null}
            <Menu position="bottom-end" withArrow>
              <Menu.Target>
                <Button variant="default" maw={{ base: 140, xs: 260 }}>
                  <span className="kt-visually-hidden">Account menu: </span>
                  <Text size="sm" truncate="end" span>
                    {email}
                  </Text>
                </Button>
              </Menu.Target>
              <Menu.Dropdown>
                <Menu.Label>
                  Signed in as {email}
                  {isAdmin ? (
                    <Badge ml={6} size="xs" color="indigo.8">
                      admin
                    </Badge>
                  ) : null}
                </Menu.Label>
                <Menu.Item component={Link} to="/">My vault</Menu.Item>
                <Menu.Item component={Link} to="/rotation_request">Key Rotation</Menu.Item>
                <Menu.Item component={Link} to="/account">Account</Menu.Item>
                <Menu.Item component={Link} to="/notifications">Notifications</Menu.Item>
                <Menu.Divider />
                <Menu.Item color="red.9" onClick={() => logout.mutate()} disabled={logout.isPending}>
                  Sign out
                </Menu.Item>
              </Menu.Dropdown>
            </Menu>
          </Group>
        </Group>
      </AppShell.Header>

      <AppShell.Navbar p="xs" aria-label="Main">
        <ScrollArea>
          <Text size="xs" fw={700} c="gray.7" tt="uppercase" px="sm" pt="xs" pb={4}>
            My account
          </Text>
          {USER_LINKS.map(link)}
          {isAdmin ? (
            <>
              <Text size="xs" fw={700} c="gray.7" tt="uppercase" px="sm" pt="md" pb={4}>
                Admin
              </Text>
              {ADMIN_LINKS.map(link)}
            </>
          ) : null}
        </ScrollArea>
      </AppShell.Navbar>

      <AppShell.Main ref={mainRef} tabIndex={-1} style={{ outline: 'none' }}>
        <div style={{ maxWidth: 1100, margin: '0 auto' }}>
          <RecoveryNotices />
          <Outlet />
        </div>
      </AppShell.Main>
    </AppShell>
  );
}
