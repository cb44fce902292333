import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { EXAMPLE } from "@penguins/ui";
import { predict } from "./model-service";

let server: Server | undefined;

async function serve(status: number, body: unknown): Promise<{ url: string; received: unknown[] }> {
  const received: unknown[] = [];
  server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk) => (text += chunk));
    request.on("end", () => {
      received.push({ path: request.url, body: JSON.parse(text) });
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, received };
}

// fetch keeps its connection alive, and close() waits for it (Node 18's server for seconds):
// the connections go first.
afterEach(() => new Promise<void>((resolve) => {
  server?.closeAllConnections();
  return server ? server.close(() => resolve()) : resolve();
}));

describe("predict", () => {
  it("posts one instance and returns the species with the model version", async () => {
    const { url, received } = await serve(200, { predictions: ["Adelie"], model_version: "penguin-classifier/2" });
    expect(await predict(EXAMPLE, url)).toEqual({ prediction: { species: "Adelie", modelVersion: "penguin-classifier/2" } });
    expect(received).toEqual([{ path: "/predict", body: { instances: [EXAMPLE] } }]);
  });

  it("says what the service answered when it refuses", async () => {
    const { url } = await serve(503, { detail: "model not loaded" });
    expect(await predict(EXAMPLE, url)).toEqual({ error: "The model service answered 503: model not loaded" });
  });

  it("says so when nothing answers", async () => {
    const outcome = await predict(EXAMPLE, "http://127.0.0.1:9");
    expect("error" in outcome && outcome.error).toMatch(/^The model service did not answer/);
  });
});
