/**
 * Every rejection the chaincode can return, with a stable machine-readable code.
 * The category tells clients (and the gateway's HTTP mapping) what kind of failure it is;
 * the codes are part of the public contract from the first deployment on: never rename one, only add.
 */
export const ERROR_CATEGORIES = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  PRECONDITION: 'PRECONDITION',
} as const;
export type ErrorCategory = keyof typeof ERROR_CATEGORIES;

const C = ERROR_CATEGORIES;
export const ERROR_CODES = {
  INVALID_ARGUMENT: C.INVALID_ARGUMENT,
  AMOUNT_OUT_OF_RANGE: C.INVALID_ARGUMENT,
  BAD_SIGNATURE: C.UNAUTHENTICATED,
  AUTHORIZATION_EXPIRED: C.PRECONDITION,
  NONCE_REUSED: C.CONFLICT,
  FORBIDDEN: C.FORBIDDEN,
  NOT_AN_OPERATOR: C.FORBIDDEN,
  NOT_OPERATOR_ADMIN: C.FORBIDDEN,
  NOT_PILE_OPERATOR: C.FORBIDDEN,
  AUDITOR_READ_ONLY: C.FORBIDDEN,
  CONSORTIUM_NOT_INITIALIZED: C.PRECONDITION,
  CONSORTIUM_ALREADY_INITIALIZED: C.CONFLICT,
  OPERATOR_NOT_FOUND: C.NOT_FOUND,
  OPERATOR_EXISTS: C.CONFLICT,
  MARGIN_ALREADY_PAID: C.CONFLICT,
  MARGIN_NOT_PAID: C.PRECONDITION,
  PROPOSAL_NOT_FOUND: C.NOT_FOUND,
  PROPOSAL_EXISTS: C.CONFLICT,
  PROPOSAL_CLOSED: C.PRECONDITION,
  ALREADY_VOTED: C.CONFLICT,
  QUORUM_NOT_REACHED: C.PRECONDITION,
  NO_TARIFF_IN_FORCE: C.PRECONDITION,
  PILE_NOT_FOUND: C.NOT_FOUND,
  PILE_EXISTS: C.CONFLICT,
  PILE_NOT_ACTIVE: C.PRECONDITION,
  PILE_BUSY: C.CONFLICT,
  PILE_RETIRED: C.PRECONDITION,
  WALLET_NOT_FOUND: C.NOT_FOUND,
  WALLET_EXISTS: C.CONFLICT,
  INSUFFICIENT_FUNDS: C.PRECONDITION,
  REFERENCE_REPLAYED: C.CONFLICT,
  SESSION_NOT_FOUND: C.NOT_FOUND,
  SESSION_EXISTS: C.CONFLICT,
  SESSION_ALREADY_SETTLED: C.CONFLICT,
  SESSION_NOT_STALE: C.PRECONDITION,
  READING_MISMATCH: C.INVALID_ARGUMENT,
  METER_WENT_BACKWARDS: C.INVALID_ARGUMENT,
  READING_OUT_OF_ORDER: C.INVALID_ARGUMENT,
  INSUFFICIENT_BEANS: C.PRECONDITION,
  ISSUANCE_LIMIT_EXCEEDED: C.PRECONDITION,
  BEANS_NOT_ON_SALE: C.PRECONDITION,
  ENVELOPE_NOT_FOUND: C.NOT_FOUND,
  ENVELOPE_EXISTS: C.CONFLICT,
  ENVELOPE_EXPIRED: C.PRECONDITION,
  ENVELOPE_NOT_EXPIRED: C.PRECONDITION,
  ENVELOPE_EMPTY: C.PRECONDITION,
  ENVELOPE_CLOSED: C.CONFLICT,
  ENVELOPE_ALREADY_CLAIMED: C.CONFLICT,
  PERIOD_NOT_ENDED: C.PRECONDITION,
  PERIOD_CLOSED: C.CONFLICT,
  PERIOD_NOT_CLOSED: C.PRECONDITION,
  TRANSFER_NOT_FOUND: C.NOT_FOUND,
  ALREADY_CONFIRMED: C.CONFLICT,
  AUDIT_NOTHING_TO_SEAL: C.PRECONDITION,
} as const satisfies Record<string, ErrorCategory>;
export type ErrorCode = keyof typeof ERROR_CODES;

/** A rule was broken; nothing was written. Serialized across the chaincode boundary as JSON. */
export class DomainError extends Error {
  readonly category: ErrorCategory;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
    this.category = ERROR_CODES[code];
  }

  toJSON(): { code: ErrorCode; category: ErrorCategory; message: string; details: Record<string, unknown> } {
    return { code: this.code, category: this.category, message: this.message, details: this.details };
  }
}

export function fail(code: ErrorCode, message: string, details?: Record<string, unknown>): never {
  throw new DomainError(code, message, details);
}
