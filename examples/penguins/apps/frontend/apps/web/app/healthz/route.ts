// Liveness and readiness for the release's probes: the server answers. Whether the model service
// does is the smoke test's question, so a model service outage never takes the page out of rotation.
export const dynamic = "force-dynamic";

export function GET() {
  return new Response("ok\n", { headers: { "content-type": "text/plain" } });
}
