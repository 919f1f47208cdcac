import { type CSSVariablesResolver, createTheme } from '@mantine/core';

export const theme = createTheme({
  primaryColor: 'indigo',
  // Shade 8 keeps white-on-primary and primary-on-white above WCAG AA contrast.
  primaryShade: { light: 8, dark: 8 },
  defaultRadius: 'md',
  fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
  fontFamilyMonospace: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
  headings: { fontWeight: '700' },
  components: {
    // The required mark would become part of each field's accessible name ("Email *"); every
    // field is required unless its label says "(optional)".
    TextInput: { defaultProps: { withAsterisk: false } },
    PasswordInput: { defaultProps: { withAsterisk: false } },
    Textarea: { defaultProps: { withAsterisk: false } },
    NativeSelect: { defaultProps: { withAsterisk: false } },
    Modal: { defaultProps: { closeButtonProps: { 'aria-label': 'Close dialog' } } },
    // Links inside text must not rely on colour alone.
    Anchor: { defaultProps: { underline: 'always' } },
    // Coloured alert titles on tinted backgrounds fall under 4.5:1; the tint carries the colour.
    Alert: { styles: { title: { color: 'var(--mantine-color-text)' } } },
  },
});

/** Mantine's default "dimmed" grey is below 4.5:1 on white; use a darker one. */
export const cssVariablesResolver: CSSVariablesResolver = () => ({
  variables: {},
  light: {
    '--mantine-color-dimmed': 'var(--mantine-color-gray-7)',
    '--mantine-color-placeholder': 'var(--mantine-color-gray-6)',
    // Mantine's red-6 error text (inputs and their messages) is 3.3:1 on white; red-9 is 5.5:1.
    '--mantine-color-error': 'var(--mantine-color-red-9)',
    // Hovering an active nav link or a subtle button put indigo-9 text on indigo-2 (4.1:1): a
    // lighter hover tint keeps 4.8:1.
    '--mantine-color-indigo-light-hover': '#cdd8ff',
  },
  dark: {},
});
