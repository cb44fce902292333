import { ISLANDS, NUMBERS, SEXES, type Measurements } from "./measurements";

function Choice({ name, label, options, value }: { name: string; label: string; options: readonly string[]; value: string }) {
  return (
    <label>
      {label}{" "}
      <select name={name} defaultValue={value}>
        {options.map((option) => (
          <option key={option}>{option}</option>
        ))}
      </select>
    </label>
  );
}

/** A plain GET form: it works before (and without) any JavaScript. */
export function MeasurementsForm({ values }: { values: Measurements }) {
  return (
    <form method="get" className="measurements">
      <Choice name="island" label="Island" options={ISLANDS} value={values.island} />
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
      <Choice name="sex" label="Sex" options={SEXES} value={values.sex} />
      <button type="submit">Predict</button>
    </form>
  );
}
