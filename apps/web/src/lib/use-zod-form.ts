import { type FormEvent, useCallback, useRef, useState } from 'react';
import type { z } from 'zod';

type Values = Record<string, string>;

export interface ZodForm<V extends Values, Out> {
  values: V;
  errors: Partial<Record<keyof V | '_form', string>>;
  setValue: (key: keyof V, value: string) => void;
  setErrors: (errors: Partial<Record<string, string>>) => void;
  reset: (next?: V) => void;
  /** Props for a Mantine input: value, onChange, error. */
  field: (key: keyof V) => {
    value: string;
    onChange: (e: { currentTarget: { value: string } }) => void;
    error: string | undefined;
    name: string;
  };
  onSubmit: (handler: (data: Out) => void) => (e: FormEvent) => void;
}

/**
 * A small form state around a shared zod schema: the API's input schema *is* the form's schema.
 * `toInput` maps the string fields to the schema's input (e.g. '' → undefined for optional fields);
 * `extra` adds client-only checks (e.g. password confirmation).
 */
export function useZodForm<V extends Values, S extends z.ZodType>(
  schema: S,
  initial: V,
  opts: { toInput?: (v: V) => unknown; extra?: (v: V) => Partial<Record<keyof V, string>> } = {},
): ZodForm<V, z.infer<S>> {
  const [values, setValues] = useState<V>(initial);
  const initialRef = useRef(initial);
  const [errors, setErrorsState] = useState<Partial<Record<keyof V | '_form', string>>>({});

  const setValue = useCallback((key: keyof V, value: string) => {
    setValues((prev) => ({ ...prev, [key]: value }));
    setErrorsState((prev) => (prev[key] ? { ...prev, [key]: undefined } : prev));
  }, []);

  const reset = useCallback((next?: V) => {
    setValues(next ?? initialRef.current);
    setErrorsState({});
  }, []);

  const field = (key: keyof V) => ({
    name: String(key),
    value: values[key] ?? '',
    onChange: (e: { currentTarget: { value: string } }) => setValue(key, e.currentTarget.value),
    error: errors[key],
  });

  const onSubmit = (handler: (data: z.infer<S>) => void) => (e: FormEvent) => {
    e.preventDefault();
    const found: Partial<Record<keyof V | '_form', string>> = {};
    const parsed = schema.safeParse(opts.toInput ? opts.toInput(values) : values);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const key = (issue.path[0] === undefined ? '_form' : String(issue.path[0])) as keyof V | '_form';
        if (!found[key]) found[key] = humanIssue(issue);
      }
    }
    const extra = opts.extra?.(values) ?? {};
    for (const [k, v] of Object.entries(extra)) if (v && !found[k as keyof V]) found[k as keyof V] = v as string;
    setErrorsState(found);
    if (Object.keys(found).length > 0 || !parsed.success) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement | null, Object.keys(found));
      return;
    }
    handler(parsed.data);
  };

  return {
    values,
    errors,
    setValue,
    setErrors: (next) => setErrorsState(next as Partial<Record<keyof V | '_form', string>>),
    reset,
    field,
    onSubmit,
  };
}

/** zod's own default messages are for developers; the shared schemas' custom messages are kept. */
function humanIssue(issue: z.core.$ZodIssue): string {
  const i = issue as z.core.$ZodIssue & { minimum?: number | bigint; maximum?: number | bigint; origin?: string };
  if (i.code === 'too_small' && i.origin === 'string') return Number(i.minimum) <= 1 ? 'Required' : `Must be at least ${i.minimum} characters`;
  if (i.code === 'too_big' && i.origin === 'string') return `Must be at most ${i.maximum} characters`;
  if (i.code === 'invalid_format' && /uuid|guid/i.test(String((i as { format?: string }).format))) return 'Must be a token id (a UUID)';
  if (i.code === 'invalid_type') return 'Required';
  return capitalise(issue.message);
}

const capitalise = (s: string) => (s ? s[0]?.toUpperCase() + s.slice(1) : s);

/** Keyboard and screen-reader users land on the first field that needs attention. */
function focusFirstInvalid(form: HTMLFormElement | null, names: string[]) {
  if (!form) return;
  for (const el of Array.from(form.elements)) {
    const name = (el as HTMLInputElement).name;
    if (name && names.includes(name)) {
      (el as HTMLElement).focus();
      return;
    }
  }
}
