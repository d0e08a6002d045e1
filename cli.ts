/** Entry point of the `kafscale` binary (`deno compile`) and of `deno run -A cli.ts`. */
import { main } from "./lib/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
