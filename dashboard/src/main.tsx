import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { RouterProvider } from "@tanstack/react-router";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { AuthProvider } from "./auth.tsx";
import { LiveProvider } from "./live.tsx";
import { router } from "./router.tsx";
import "./styles.css";

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // Fresh until the stream says otherwise: nothing is refetched on a timer, a focus or a reconnect.
      staleTime: Number.POSITIVE_INFINITY,
      refetchOnWindowFocus: false,
      refetchOnReconnect: false,
      retry: (count, error) => count < 2 && !(error instanceof Error && "status" in error && error.status !== 0),
    },
  },
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <AuthProvider>
        {(token) => (
          <LiveProvider token={token}>
            <RouterProvider router={router} />
          </LiveProvider>
        )}
      </AuthProvider>
    </QueryClientProvider>
  </StrictMode>,
);
