/**
 * Who may act: consortium membership lookups and the access checks every transaction starts with.
 * Only an operator's own identities act for it; auditor organizations read everything and write nothing.
 * Depends on nothing but the state, so every rule module (and the audit trail) can use it.
 */
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { exists, getJson, listJson } from './state';

export interface Consortium {
  auditorMspIds: string[];
  /**
   * The pool's custodian (CUSTODIAN RULE, consortium.ts): the only organization that confirms margin
   * deposits and the pool's side of clearing transfers. Absent only in records written before it existed,
   * where it is the first auditor organization (`custodianOf`).
   */
  custodianMspId?: string;
  initializedAt: number;
  initializedBy: string;
  /** SM3 of the genesis document every endorsing peer had pinned (consortium.ts: genesisDigest). */
  genesisSm3: string;
  /** Every driver and pile signature names it (messages.ts), so none can be replayed in another network. */
  networkId: string;
}

export interface Operator {
  mspId: string;
  /** English name: consenters take turns in this order. */
  name: string;
  admittedAt: number;
  /** The margin the custodian confirmed was paid into the pool (0 until then): only this makes a member. */
  marginPaidFen: number;
  marginPaidAt?: number;
  /** The margin the operator's admin declared it paid (PayMargin), awaiting the custodian's confirmation. */
  marginDeclaredFen?: number;
  marginDeclaredAt?: number;
  /** Charging rebate: one bean per this many Wh charged at this operator's piles; 0 = no rebate. */
  rebateWhPerBean: number;
  /** Price of one bean sold to drivers, in fen; 0 = not on sale. */
  beanSalePriceFen: number;
}

export async function getConsortium(ctx: TxContext): Promise<Consortium> {
  const c = await getJson<Consortium>(ctx.store, Keys.consortium());
  if (!c) return fail('CONSORTIUM_NOT_INITIALIZED', 'the consortium has not been initialized');
  return c;
}

/** The MSP id of the pool's custodian (see Consortium.custodianMspId). */
export function custodianOf(c: Consortium): string | undefined {
  return c.custodianMspId ?? c.auditorMspIds[0];
}

/** The caller, which must be an admin identity of the pool's custodian. */
export async function requireCustodianAdmin(ctx: TxContext): Promise<string> {
  const custodian = custodianOf(await getConsortium(ctx));
  if (custodian === undefined || ctx.caller.mspId !== custodian)
    fail('NOT_CUSTODIAN', `only the pool's custodian (${custodian ?? 'none'}) may do this`);
  requireAdminRole(ctx);
  return custodian;
}

/** The network id every signed message must name (see messages.ts). */
export async function networkId(ctx: TxContext): Promise<string> {
  return (await getConsortium(ctx)).networkId;
}

export async function getOperator(ctx: TxContext, mspId: string): Promise<Operator> {
  const op = await getJson<Operator>(ctx.store, Keys.operator(mspId));
  if (!op) return fail('OPERATOR_NOT_FOUND', `operator ${mspId} is not a member`, { mspId });
  return op;
}

/** Every admitted operator, margin paid or not, in English-name order. */
export async function allOperators(ctx: TxContext): Promise<Operator[]> {
  return (await listJson<Operator>(ctx.store, Keys.operatorsPrefix()))
    .map((e) => e.value)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Members with their margin paid, in English-name order. */
export async function activeOperators(ctx: TxContext): Promise<Operator[]> {
  return (await allOperators(ctx)).filter((o) => o.marginPaidFen > 0);
}

export async function refuseAuditor(ctx: TxContext): Promise<void> {
  const c = await getConsortium(ctx);
  if (c.auditorMspIds.includes(ctx.caller.mspId))
    fail('AUDITOR_READ_ONLY', 'auditors can read but not write');
}

/**
 * The calling operator, paid up or not: for the books about the books (registering its consenter,
 * witnessing blocks), which every member keeps from the start, before any money moves.
 */
export async function requireMember(ctx: TxContext): Promise<Operator> {
  await refuseAuditor(ctx);
  const op = await getJson<Operator>(ctx.store, Keys.operator(ctx.caller.mspId));
  if (!op) return fail('NOT_AN_OPERATOR', `${ctx.caller.mspId} is not a consortium operator`);
  return op;
}

/** The calling operator, which must be a member in good standing (margin paid). */
export async function requireOperator(ctx: TxContext): Promise<Operator> {
  const op = await requireMember(ctx);
  if (op.marginPaidFen === 0) fail('MARGIN_NOT_PAID', `${op.name} has not paid its margin yet`);
  return op;
}

export function requireAdminRole(ctx: TxContext): void {
  if (ctx.caller.role !== 'admin') fail('NOT_OPERATOR_ADMIN', 'this action needs an operator admin identity');
}

export async function requireOperatorAdmin(ctx: TxContext): Promise<Operator> {
  const op = await requireOperator(ctx);
  requireAdminRole(ctx);
  return op;
}

/** Operators, auditors and the pool's custodian may read consortium-wide data. */
export async function requireReader(ctx: TxContext): Promise<'operator' | 'auditor'> {
  const c = await getConsortium(ctx);
  if (c.auditorMspIds.includes(ctx.caller.mspId) || custodianOf(c) === ctx.caller.mspId) return 'auditor';
  if (await exists(ctx.store, Keys.operator(ctx.caller.mspId))) return 'operator';
  return fail('FORBIDDEN', `${ctx.caller.mspId} is neither an operator nor an auditor`);
}
