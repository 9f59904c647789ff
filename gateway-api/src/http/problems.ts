/**
 * Every error the gateway answers has one JSON shape, `{ code, message, details }`, and a status chosen
 * here, once: the gateway's own codes (bad requests, credentials, limits) and the chaincode's codes,
 * mapped by the category the chaincode gives each of them (chaincode/src/domain/errors.ts).
 */
import { ERROR_CODES } from '@evpay/chaincode/client';

export interface ProblemBody {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

/** The gateway's own error codes and their HTTP status. */
export const GATEWAY_CODES = {
  MALFORMED_JSON: 400,
  /** A member named twice in one object (http/duplicateKeys.ts). */
  DUPLICATE_JSON_KEY: 400,
  /** Refused by Node's HTTP parser before any route (http/clientErrors.ts), like the two below. */
  MALFORMED_REQUEST: 400,
  REQUEST_TIMEOUT: 408,
  HEADERS_TOO_LARGE: 431,
  VALIDATION_FAILED: 400,
  UNKNOWN_FIELD: 400,
  BAD_IDEMPOTENCY_KEY: 400,
  UNAUTHENTICATED: 401,
  /** The driver's SM2 signature does not verify (the chaincode's code of the same name, checked here first). */
  BAD_SIGNATURE: 401,
  ROLE_FORBIDDEN: 403,
  PILE_NOT_IN_SCOPE: 403,
  READ_ONLY_GATEWAY: 403,
  ROUTE_NOT_FOUND: 404,
  /** OCPP (ocpp/csms.ts): no such charger, or no charger of the pile ever connected. */
  CHARGER_NOT_FOUND: 404,
  /** OCPP: the charger is not connected, or did not answer. */
  CHARGER_NOT_CONNECTED: 409,
  /** OCPP: the charger refused to start. */
  CHARGER_REJECTED: 409,
  METHOD_NOT_ALLOWED: 405,
  NOT_ACCEPTABLE: 406,
  IDEMPOTENCY_KEY_REUSED: 422,
  TRANSACTION_INVALIDATED: 409,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  LEDGER_UNAVAILABLE: 503,
  OUTCOME_UNKNOWN: 504,
} as const;
export type GatewayCode = keyof typeof GATEWAY_CODES;

/** HTTP status of each chaincode error category. */
export const CATEGORY_STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PRECONDITION: 422,
};

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: GatewayCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = GATEWAY_CODES[code];
  }
  body(): ProblemBody {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** The status of a chaincode error: by its category (given by the chaincode, or known from its code). */
export function chaincodeStatus(code: string, category?: string): number {
  const cat = category ?? (ERROR_CODES as Readonly<Record<string, string>>)[code];
  if (cat === undefined) return 500;
  return CATEGORY_STATUS[cat] ?? 500;
}
