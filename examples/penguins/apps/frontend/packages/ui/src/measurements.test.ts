import { describe, expect, it } from "vitest";
import { EXAMPLE, parseMeasurements } from "./measurements";

const query = (values: Record<string, string | number>) =>
  Object.fromEntries(Object.entries(values).map(([key, value]) => [key, String(value)]));

describe("parseMeasurements", () => {
  it("reads a complete query as the model server's instance", () => {
    expect(parseMeasurements(query(EXAMPLE))).toEqual({ kind: "ok", measurements: EXAMPLE });
  });

  it("is empty before the form was sent", () => {
    expect(parseMeasurements({})).toEqual({ kind: "empty" });
  });

  it("names every missing or impossible value", () => {
    const parsed = parseMeasurements(query({ ...EXAMPLE, island: "Atlantis", body_mass_g: "heavy", bill_depth_mm: 500 }));
    expect(parsed).toEqual({
      kind: "invalid",
      errors: [
        "island must be one of Biscoe, Dream, Torgersen",
        "Bill depth (mm) must be between 5 and 40",
        "Body mass (g) must be a number",
      ],
    });
  });

  it("takes the first of repeated values", () => {
    const parsed = parseMeasurements({ ...query(EXAMPLE), sex: ["female", "male"] });
    expect(parsed).toEqual({ kind: "ok", measurements: { ...EXAMPLE, sex: "female" } });
  });
});
