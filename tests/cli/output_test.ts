import assert from "node:assert/strict";
import {
  EXIT,
  oneLine,
  parseCommand,
  parseInteger,
  renderFields,
  renderTable,
  runCommand,
  UsageError,
} from "../../lib/cli/output.ts";
import { AdminError } from "../../lib/client/admin.ts";
import { captureIo } from "./cli_support.ts";

Deno.test("renderTable: columns padded to the widest cell, nulls as dashes", () => {
  assert.equal(
    renderTable(["NAME", "N", "LAST"], [["alpha", 1, "x"], ["b", null, "long value"]]),
    ["NAME   N  LAST", "alpha  1  x", "b      -  long value"].join("\n"),
  );
  assert.equal(renderTable(["ONLY"], []), "ONLY");
});

Deno.test("renderFields: keys padded, values after two spaces", () => {
  assert.equal(renderFields([["A", 1], ["LONGER", null]]), "A       1\nLONGER  -");
});

Deno.test("parseCommand: defaults, negative option values, strictness", () => {
  const cmd = parseCommand(["x", "--shift-by", "-3"], { "shift-by": { type: "string" } });
  assert.equal(cmd.values["shift-by"], "-3");
  assert.deepEqual(cmd.positionals, ["x"]);
  assert.equal(cmd.bootstrap, "localhost:9092");
  assert.equal(cmd.output, "table");
  assert.equal(parseCommand(["-o", "json"], {}).output, "json");
  assert.throws(() => parseCommand(["--nope"], {}), UsageError);
  assert.throws(() => parseCommand(["--output", "xml"], {}), /"table" or "json"/);
  assert.throws(() => parseCommand(["--bootstrap-server", "host"], {}), /HOST:PORT/);
});

Deno.test("parseInteger: whole numbers within bounds", () => {
  assert.equal(parseInteger("42", "N"), 42);
  assert.equal(parseInteger("-7", "N"), -7);
  assert.throws(() => parseInteger("4.5", "N"), /must be an integer/);
  assert.throws(() => parseInteger("99999999999999999999", "N"), /must be an integer/);
  assert.throws(() => parseInteger("0", "N", 1), /at least 1/);
});

Deno.test("runCommand: failures become one stderr line and an exit code", async () => {
  let io = captureIo();
  assert.equal(
    await runCommand(io, "kafscale x", () => Promise.reject(new UsageError("Bad flag"))),
    EXIT.USAGE,
  );
  assert.deepEqual(io.err, ['Bad flag; run "kafscale x --help" for usage']);
  io = captureIo();
  assert.equal(
    await runCommand(io, "kafscale x", () => Promise.reject(new AdminError("Broke\n  badly"))),
    EXIT.FAILED,
  );
  assert.deepEqual(io.err, ["Broke badly"]);
  io = captureIo();
  assert.equal(
    await runCommand(io, "kafscale x", () => Promise.reject(new RangeError("decode"))),
    EXIT.FAILED,
  );
  assert.deepEqual(io.err, ["Unexpected failure: decode"]);
  assert.equal(oneLine(" a\nb "), "a b");
});
