/** Small shared pieces of the console pages. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError } from './api';

/** A date-time as `2026-12-06 18:20 UTC` (the console shows UTC everywhere). */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function message(e: unknown): string {
  return e instanceof ApiError || e instanceof Error ? e.message : 'request failed';
}

/** Loads `load()` on mount and when `deps` change; `reload` runs it again. */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: unknown[] = [],
): { data: T | undefined; error: ApiError | Error | undefined; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError | Error>();
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (d) => live && (setData(d), setError(undefined)),
      (e: unknown) => live && setError(e instanceof Error ? e : new Error('request failed')),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { data, error, reload };
}

/** The polite live region every page announces results in. */
export function Status(props: { children?: ComponentChildren; error?: boolean }) {
  return (
    <p
      class={props.error ? 'status error' : 'status'}
      role={props.error ? 'alert' : 'status'}
      aria-live="polite"
    >
      {props.children}
    </p>
  );
}

export function Loading(props: { error: Error | undefined }) {
  return props.error ? <Status error>{props.error.message}</Status> : <Status>Loading…</Status>;
}
