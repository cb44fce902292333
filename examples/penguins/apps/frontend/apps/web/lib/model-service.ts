import type { Measurements, Prediction } from "@penguins/ui";

// Read at request time, so one image serves any environment: the release sets it to its model
// service's address.
const DEFAULT_URL = "http://127.0.0.1:8000";
const TIMEOUT_MS = 10_000;

export type Outcome = { prediction: Prediction } | { error: string };

/** One prediction from the model service, or a sentence saying why there is none. */
export async function predict(measurements: Measurements, baseUrl = process.env.MODEL_SERVER_URL ?? DEFAULT_URL): Promise<Outcome> {
  const url = `${baseUrl.replace(/\/+$/, "")}/predict`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ instances: [measurements] }),
      cache: "no-store",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { error: `The model service did not answer: ${reason}` };
  }
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = (body as { detail?: unknown } | null)?.detail;
    return { error: `The model service answered ${response.status}${detail ? `: ${String(detail)}` : ""}` };
  }
  const { predictions, model_version } = (body ?? {}) as { predictions?: unknown; model_version?: unknown };
  if (!Array.isArray(predictions) || typeof predictions[0] !== "string" || typeof model_version !== "string") {
    return { error: "The model service answered without a prediction" };
  }
  return { prediction: { species: predictions[0], modelVersion: model_version } };
}
