// A penguin's measurements as the model server's /predict expects them, read from the page's query
// (the form submits with GET, so the page works without JavaScript and a link can be shared).

export const ISLANDS = ["Biscoe", "Dream", "Torgersen"] as const;
export const SEXES = ["male", "female"] as const;

export type Measurements = {
  island: (typeof ISLANDS)[number];
  bill_length_mm: number;
  bill_depth_mm: number;
  flipper_length_mm: number;
  body_mass_g: number;
  sex: (typeof SEXES)[number];
};

type Field = { name: keyof Measurements; label: string; step?: string; min: number; max: number };

export const NUMBERS: readonly Field[] = [
  { name: "bill_length_mm", label: "Bill length (mm)", step: "0.1", min: 10, max: 100 },
  { name: "bill_depth_mm", label: "Bill depth (mm)", step: "0.1", min: 5, max: 40 },
  { name: "flipper_length_mm", label: "Flipper length (mm)", min: 100, max: 300 },
  { name: "body_mass_g", label: "Body mass (g)", min: 1000, max: 10000 },
];

export const EXAMPLE: Measurements = {
  island: "Torgersen",
  bill_length_mm: 39.1,
  bill_depth_mm: 18.7,
  flipper_length_mm: 181,
  body_mass_g: 3750,
  sex: "male",
};

export type Query = Record<string, string | string[] | undefined>;

export type Parsed =
  | { kind: "empty" }
  | { kind: "invalid"; errors: string[] }
  | { kind: "ok"; measurements: Measurements };

function one(query: Query, name: string): string | undefined {
  const value = query[name];
  return Array.isArray(value) ? value[0] : value;
}

function choice<T extends string>(value: string | undefined, allowed: readonly T[]): T | undefined {
  return allowed.find((option) => option === value);
}

/** The measurements in a query, every problem named, or "empty" when nothing was asked yet. */
export function parseMeasurements(query: Query): Parsed {
  const names = ["island", "sex", ...NUMBERS.map((field) => field.name)];
  if (names.every((name) => one(query, name) === undefined)) return { kind: "empty" };
  const errors: string[] = [];
  const island = choice(one(query, "island"), ISLANDS);
  if (!island) errors.push(`island must be one of ${ISLANDS.join(", ")}`);
  const sex = choice(one(query, "sex"), SEXES);
  if (!sex) errors.push(`sex must be one of ${SEXES.join(", ")}`);
  const numbers: Partial<Record<keyof Measurements, number>> = {};
  for (const field of NUMBERS) {
    const raw = one(query, field.name)?.trim() ?? "";
    const value = Number(raw);
    if (raw === "" || !Number.isFinite(value)) {
      errors.push(`${field.label} must be a number`);
    } else if (value < field.min || value > field.max) {
      errors.push(`${field.label} must be between ${field.min} and ${field.max}`);
    } else {
      numbers[field.name] = value;
    }
  }
  if (errors.length > 0 || !island || !sex) return { kind: "invalid", errors };
  return { kind: "ok", measurements: { ...(numbers as Omit<Measurements, "island" | "sex">), island, sex } };
}
