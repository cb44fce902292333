export type Prediction = { species: string; modelVersion: string };

/** What the model service said, with the model version that answered, or why there is no answer. */
export function Answer({ prediction, errors }: { prediction?: Prediction; errors?: string[] }) {
  if (errors && errors.length > 0) {
    return (
      <ul role="alert" className="errors">
        {errors.map((error) => (
          <li key={error}>{error}</li>
        ))}
      </ul>
    );
  }
  if (!prediction) return null;
  return (
    <p className="answer" aria-live="polite">
      <strong data-testid="species">{prediction.species}</strong>, according to model{" "}
      <code data-testid="model-version">{prediction.modelVersion}</code>
    </p>
  );
}
