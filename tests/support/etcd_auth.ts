/** Test support: turning on etcd authentication with a root user, through etcd's JSON gateway. */
import assert from "node:assert/strict";

export async function enableEtcdAuth(
  endpoint: string,
  user: string,
  password: string,
): Promise<void> {
  const calls: [string, unknown][] = [
    ["/v3/auth/role/add", { name: "root" }],
    ["/v3/auth/user/add", { name: user, password }],
    ["/v3/auth/user/grant", { user, role: "root" }],
    ["/v3/auth/enable", {}],
  ];
  for (const [path, body] of calls) {
    const response = await fetch(`${endpoint}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    assert.ok(response.ok, `etcd ${path}: HTTP ${response.status} ${text}`);
  }
}
