/**
 * Errors of the control service as gRPC status codes (the numbers are gRPC's, fixed by its
 * spec), so the service logic names the problem without importing the gRPC library.
 */

export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatus = (typeof GRPC_STATUS)[keyof typeof GRPC_STATUS];

export function grpcStatusName(code: number): string {
  return Object.entries(GRPC_STATUS).find(([, c]) => c === code)?.[0] ?? `STATUS_${code}`;
}

/** A failed call: a gRPC status code and a message that names the problem. */
export class ControlError extends Error {
  override name = "ControlError";
  constructor(readonly code: number, message: string) {
    super(message);
  }
}
