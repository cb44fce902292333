// Sends the form to the model server (proxied under /api/) and shows the species it predicts.
const NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"];

function instance(form) {
  const fields = Object.fromEntries(new FormData(form));
  for (const name of NUMBERS) fields[name] = Number(fields[name]);
  return fields;
}

document.getElementById("measures").addEventListener("submit", async (event) => {
  event.preventDefault();
  const answer = document.getElementById("answer");
  const response = await fetch("api/predict", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ instances: [instance(event.target)] }),
  });
  const body = await response.json();
  answer.textContent = response.ok
    ? `${body.predictions[0]} (model ${body.model_version})`
    : `The model server answered ${response.status}: ${body.detail}`;
});
