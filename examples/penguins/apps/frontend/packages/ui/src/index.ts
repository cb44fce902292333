export { Answer, type Prediction } from "./Answer";
export { MeasurementsForm } from "./MeasurementsForm";
export { EXAMPLE, ISLANDS, SEXES, parseMeasurements, type Measurements, type Parsed, type Query } from "./measurements";
