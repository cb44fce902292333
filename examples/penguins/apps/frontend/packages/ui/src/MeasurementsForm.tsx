import { ISLANDS, NUMBERS, SEXES, type Measurements } from "./measurements";

/** A plain GET form: it works before (and without) any JavaScript. */
export function MeasurementsForm({ values }: { values: Measurements }) {
  return (
    <form method="get" className="measurements">
      <label>
        Island{" "}
        <select name="island" defaultValue={values.island}>
          {ISLANDS.map((island) => (
            <option key={island}>{island}</option>
          ))}
        </select>
      </label>
      {NUMBERS.map((field) => (
        <label key={field.name}>
          {field.label}{" "}
          <input
            name={field.name}
            type="number"
            step={field.step ?? "1"}
            min={field.min}
            max={field.max}
            required
            defaultValue={values[field.name]}
          />
        </label>
      ))}
      <label>
        Sex{" "}
        <select name="sex" defaultValue={values.sex}>
          {SEXES.map((sex) => (
            <option key={sex}>{sex}</option>
          ))}
        </select>
      </label>
      <button type="submit">Predict</button>
    </form>
  );
}
