import assert from "node:assert/strict";
import { render } from "../scripts/gen_readme.ts";

Deno.test("README: the API and configuration tables match the code", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  assert.equal(readme, await render(readme), 'README.md is stale: run "deno task readme"');
});
