/**
 * Who the page is to the server. GET /api/whoami says which tokens the server requires and what the session's token
 * grants: with a read token required and none given, the dashboard asks for one before anything else; with only a
 * read token (or none where writes need one), every write action is hidden (and the server would refuse it anyway);
 * where the node has an admin token, the admin actions (failure drills, deleting, changing concurrency) are shown to
 * it alone.
 * The token is kept in sessionStorage: for this tab's session only.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, type FormEvent, type ReactNode, useContext, useEffect, useMemo, useState } from "react";
import { ApiError, api, session } from "./api.ts";
import type { WhoAmI } from "./types.ts";
import { Button, Dialog, toast } from "./ui/kit.tsx";

export type Auth = {
  token: string | null;
  whoami: WhoAmI | null;
  /** Whether write actions are shown. */
  canWrite: boolean;
  /** Whether admin actions are shown (failure drills, deleting, concurrency): write's, unless an admin token is set. */
  canAdmin: boolean;
  /** The server needs a token to read and the page has none that works. */
  locked: boolean;
  signIn(): void;
  signOut(): void;
};

const AuthContext = createContext<Auth | null>(null);

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (auth === null) throw new Error("useAuth outside AuthProvider");
  return auth;
}

/** Before /api/whoami exists on a node: anything goes until the server says 401. */
const UNKNOWN: WhoAmI = { scope: "write", tokens: { read: false, write: false } };

export function AuthProvider({ children }: { children: (token: string | null) => ReactNode }) {
  const [token, setTokenState] = useState<string | null>(session.token);
  const [prompt, setPrompt] = useState(false);
  const queryClient = useQueryClient();
  const whoami = useQuery({
    queryKey: ["whoami", token],
    queryFn: async () => {
      try {
        return await api.whoami();
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return UNKNOWN;
        throw error;
      }
    },
    staleTime: Number.POSITIVE_INFINITY,
    retry: 1,
  });
  useEffect(
    () =>
      session.onAuthProblem((problem) => {
        if (problem === "unauthorized") setPrompt(true);
        else toast("This token's scope is too small: the server refused the action", "error");
      }),
    [],
  );
  const data = whoami.data ?? null;
  const locked = data?.tokens.read === true && data.scope === "none";
  const canWrite =
    data === null
      ? false
      : data.scope === "admin" || (data.tokens.write || data.tokens.read ? data.scope === "write" : true);
  const canAdmin = data === null ? false : data.tokens.admin === true ? data.scope === "admin" : canWrite;

  const auth = useMemo<Auth>(
    () => ({
      token,
      whoami: data,
      canWrite,
      canAdmin,
      locked,
      signIn: () => setPrompt(true),
      signOut: () => {
        session.token = null;
        setTokenState(null);
        queryClient.clear();
      },
    }),
    [token, data, canWrite, canAdmin, locked, queryClient],
  );

  const submit = async (value: string) => {
    session.token = value;
    const answer = await api.whoami().catch((error: unknown) => {
      if (error instanceof ApiError && error.status === 404) return UNKNOWN;
      throw error;
    });
    if (answer.scope === "none" && (answer.tokens.read || answer.tokens.write)) {
      session.token = token;
      throw new Error("That token is not one this server knows.");
    }
    setTokenState(value);
    setPrompt(false);
    queryClient.clear();
  };

  return (
    <AuthContext.Provider value={auth}>
      {locked ? (
        <TokenScreen onSubmit={submit} />
      ) : data === null && whoami.isPending ? (
        <div className="boot" aria-busy="true" />
      ) : (
        children(token)
      )}
      <TokenDialog open={prompt && !locked} onClose={() => setPrompt(false)} onSubmit={submit} />
    </AuthContext.Provider>
  );
}

function TokenForm({ onSubmit, autoFocus }: { onSubmit: (token: string) => Promise<void>; autoFocus?: boolean }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onSubmit(value.trim());
    } catch (problem) {
      setError(problem instanceof Error ? problem.message : String(problem));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="token-form" onSubmit={submit}>
      <label className="field">
        <span>API token</span>
        <input
          type="password"
          name="token"
          autoComplete="current-password"
          value={value}
          // biome-ignore lint/a11y/noAutofocus: the only thing to do on this screen
          autoFocus={autoFocus}
          onChange={(event) => setValue(event.target.value)}
          aria-invalid={error !== null}
        />
      </label>
      {error === null ? null : (
        <p className="error-note" role="alert">
          {error}
        </p>
      )}
      <p className="muted small">Kept for this browser tab only (session storage), sent to this server alone.</p>
      <Button type="submit" tone="primary" disabled={busy || value.trim() === ""}>
        Sign in
      </Button>
    </form>
  );
}

function TokenScreen({ onSubmit }: { onSubmit: (token: string) => Promise<void> }) {
  return (
    <main className="token-screen">
      <div className="token-card">
        <h1>
          <span className="logo" aria-hidden="true" /> Conveyor
        </h1>
        <p>This server needs a token to show its tasks.</p>
        <TokenForm onSubmit={onSubmit} autoFocus />
      </div>
    </main>
  );
}

function TokenDialog({
  open,
  onClose,
  onSubmit,
}: {
  open: boolean;
  onClose: () => void;
  onSubmit: (token: string) => Promise<void>;
}) {
  return (
    <Dialog open={open} onClose={onClose} title="Sign in">
      <p>This action needs a token with write access.</p>
      <TokenForm onSubmit={onSubmit} autoFocus />
    </Dialog>
  );
}
