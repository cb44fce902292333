export { GET, dynamic } from "../healthz/route";
