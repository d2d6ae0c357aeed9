import { Link } from "@tanstack/react-router";

export function NotFound() {
  return (
    <div className="page">
      <h1>Not here</h1>
      <p>
        Nothing lives at this address. <Link to="/">Back to the overview</Link>.
      </p>
    </div>
  );
}
