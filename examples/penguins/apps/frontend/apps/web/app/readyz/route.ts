export { GET } from "../healthz/route";
// Next reads a route's segment config from the route's own source: declared, not re-exported.
export const dynamic = "force-dynamic";
