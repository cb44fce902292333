// What this server is, for the release's verification through the service: the color it was
// deployed as, the image it runs and the model service it asks.
export const dynamic = "force-dynamic";

export function GET() {
  return Response.json({
    app: "penguins-web",
    color: process.env.COLOR ?? "",
    image: process.env.IMAGE_REF ?? "",
    model_server: process.env.MODEL_SERVER_URL ?? "",
  });
}
