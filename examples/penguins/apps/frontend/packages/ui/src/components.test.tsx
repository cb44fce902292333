import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { Answer } from "./Answer";
import { EXAMPLE } from "./measurements";
import { MeasurementsForm } from "./MeasurementsForm";

describe("MeasurementsForm", () => {
  it("is a GET form with every field the model needs, filled with the given values", () => {
    const html = renderToStaticMarkup(<MeasurementsForm values={EXAMPLE} />);
    expect(html).toContain('method="get"');
    for (const name of ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]) {
      expect(html).toContain(`name="${name}"`);
    }
    expect(html).toContain('value="39.1"');
  });
});

describe("Answer", () => {
  it("shows the species with the model version that answered", () => {
    const html = renderToStaticMarkup(<Answer prediction={{ species: "Adelie", modelVersion: "penguin-classifier/3" }} />);
    expect(html).toContain("Adelie");
    expect(html).toContain("penguin-classifier/3");
  });

  it("lists the problems instead of an answer", () => {
    const html = renderToStaticMarkup(<Answer errors={["sex must be one of male, female"]} />);
    expect(html).toContain('role="alert"');
    expect(html).toContain("sex must be one of male, female");
  });
});
