import { Answer, EXAMPLE, MeasurementsForm, parseMeasurements, type Query } from "@penguins/ui";
import { predict } from "../lib/model-service";

// Every request asks the model service: a prediction is never cached or prerendered.
export const dynamic = "force-dynamic";

export default async function Page({ searchParams }: { searchParams: Promise<Query> }) {
  const parsed = parseMeasurements(await searchParams);
  const outcome = parsed.kind === "ok" ? await predict(parsed.measurements) : undefined;
  return (
    <main>
      <h1>Which penguin is it?</h1>
      <MeasurementsForm values={parsed.kind === "ok" ? parsed.measurements : EXAMPLE} />
      {parsed.kind === "invalid" && <Answer errors={parsed.errors} />}
      {outcome && ("error" in outcome ? <Answer errors={[outcome.error]} /> : <Answer prediction={outcome.prediction} />)}
    </main>
  );
}
