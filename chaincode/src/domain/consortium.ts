/**
 * Consortium membership: operators (MSP id + English name), their margin deposits into the pool,
 * auditor organizations, and who may do what. Only an operator's own identities act for it; auditors
 * read everything and write nothing.
 */
import { z } from 'zod';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { paramsAt, paramsDraftSchema, type Params } from './params';
import { exists, getJson, listJson, putJson, emit } from './state';
import { tariffDraftSchema, type Tariff } from './tariff';
import { mspIdSchema, parse } from './validate';
import { appendAudit } from './audit';
import { poolCredit } from './pool';

export interface Consortium {
  auditorMspIds: string[];
  initializedAt: number;
  initializedBy: string;
}

export interface Operator {
  mspId: string;
  /** English name: consenters take turns in this order. */
  name: string;
  admittedAt: number;
  marginPaidFen: number;
  marginPaidAt?: number;
  /** Charging rebate: one bean per this many Wh charged at this operator's piles; 0 = no rebate. */
  rebateWhPerBean: number;
  /** Price of one bean sold to drivers, in fen; 0 = not on sale. */
  beanSalePriceFen: number;
}

export const operatorNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z][A-Za-z0-9 &.-]*$/, 'English name: letters, digits, spaces, "&", "." or "-"');

export const initSchema = z
  .object({
    operators: z
      .array(z.object({ mspId: mspIdSchema, name: operatorNameSchema }).strict())
      .min(1)
      .max(64),
    auditorMspIds: z.array(mspIdSchema).max(16),
    params: paramsDraftSchema,
    tariff: tariffDraftSchema,
  })
  .strict();

export async function getConsortium(ctx: TxContext): Promise<Consortium> {
  const c = await getJson<Consortium>(ctx.store, Keys.consortium());
  if (!c) return fail('CONSORTIUM_NOT_INITIALIZED', 'the consortium has not been initialized');
  return c;
}

export async function getOperator(ctx: TxContext, mspId: string): Promise<Operator> {
  const op = await getJson<Operator>(ctx.store, Keys.operator(mspId));
  if (!op) return fail('OPERATOR_NOT_FOUND', `operator ${mspId} is not a member`, { mspId });
  return op;
}

/** Members with their margin paid, in English-name order. */
export async function activeOperators(ctx: TxContext): Promise<Operator[]> {
  return (await listJson<Operator>(ctx.store, Keys.operatorsPrefix()))
    .map((e) => e.value)
    .filter((o) => o.marginPaidFen > 0)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function refuseAuditor(ctx: TxContext): Promise<void> {
  const c = await getConsortium(ctx);
  if (c.auditorMspIds.includes(ctx.caller.mspId))
    fail('AUDITOR_READ_ONLY', 'auditors can read but not write');
}

/** The calling operator, which must be a member in good standing (margin paid). */
export async function requireOperator(ctx: TxContext): Promise<Operator> {
  await refuseAuditor(ctx);
  const op = await getJson<Operator>(ctx.store, Keys.operator(ctx.caller.mspId));
  if (!op) return fail('NOT_AN_OPERATOR', `${ctx.caller.mspId} is not a consortium operator`);
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

/** Operators and auditors may read consortium-wide data. */
export async function requireReader(ctx: TxContext): Promise<'operator' | 'auditor'> {
  const c = await getConsortium(ctx);
  if (c.auditorMspIds.includes(ctx.caller.mspId)) return 'auditor';
  if (await exists(ctx.store, Keys.operator(ctx.caller.mspId))) return 'operator';
  return fail('FORBIDDEN', `${ctx.caller.mspId} is neither an operator nor an auditor`);
}

/** One-time bootstrap by an admin of one of the founding operators. */
export async function initConsortium(ctx: TxContext, input: unknown): Promise<Consortium> {
  const req = parse(initSchema, input, 'init');
  if (await exists(ctx.store, Keys.consortium()))
    fail('CONSORTIUM_ALREADY_INITIALIZED', 'already initialized');
  requireAdminRole(ctx);
  if (!req.operators.some((o) => o.mspId === ctx.caller.mspId))
    fail('FORBIDDEN', 'only an admin of a founding operator may initialize the consortium');
  const msps = new Set<string>();
  const names = new Set<string>();
  for (const o of req.operators) {
    if (msps.has(o.mspId) || names.has(o.name))
      fail('OPERATOR_EXISTS', `duplicate operator ${o.mspId} / ${o.name}`);
    msps.add(o.mspId);
    names.add(o.name);
  }
  if (req.auditorMspIds.some((a) => msps.has(a)))
    fail('INVALID_ARGUMENT', 'an auditor cannot be an operator');
  const consortium: Consortium = {
    auditorMspIds: req.auditorMspIds,
    initializedAt: ctx.now,
    initializedBy: ctx.caller.mspId,
  };
  await putJson(ctx.store, Keys.consortium(), consortium);
  for (const o of req.operators)
    await putJson(ctx.store, Keys.operator(o.mspId), newOperator(ctx, o.mspId, o.name));
  const params: Params = { ...req.params, version: 1, effectiveFrom: ctx.now };
  const tariff: Tariff = { ...req.tariff, version: 1, effectiveFrom: ctx.now };
  await putJson(ctx.store, Keys.params(1), params);
  await putJson(ctx.store, Keys.tariff(1), tariff);
  await appendAudit(ctx, ctx.caller.mspId, 'ConsortiumInitialized', {
    operators: req.operators.map((o) => o.mspId),
    auditorMspIds: req.auditorMspIds,
  });
  emit(ctx, 'ConsortiumInitialized', { operators: req.operators.map((o) => o.mspId) });
  return consortium;
}

export function newOperator(ctx: TxContext, mspId: string, name: string): Operator {
  return { mspId, name, admittedAt: ctx.now, marginPaidFen: 0, rebateWhPerBean: 0, beanSalePriceFen: 0 };
}

/** The operator's admin records that its margin deposit was paid into the pool. */
export async function payMargin(ctx: TxContext): Promise<Operator> {
  await refuseAuditor(ctx);
  const op = await getJson<Operator>(ctx.store, Keys.operator(ctx.caller.mspId));
  if (!op) return fail('NOT_AN_OPERATOR', `${ctx.caller.mspId} is not a consortium operator`);
  requireAdminRole(ctx);
  if (op.marginPaidFen > 0) fail('MARGIN_ALREADY_PAID', `${op.name} has already paid its margin`);
  const params = await paramsAt(ctx.store, ctx.now);
  const updated: Operator = { ...op, marginPaidFen: params.marginFen, marginPaidAt: ctx.now };
  await putJson(ctx.store, Keys.operator(op.mspId), updated);
  await poolCredit(ctx, params.marginFen, 'margin', op.mspId);
  await appendAudit(ctx, op.mspId, 'MarginPaid', { amountFen: params.marginFen });
  emit(ctx, 'MarginPaid', { mspId: op.mspId, amountFen: params.marginFen });
  return updated;
}

export const operatorPolicySchema = z
  .object({
    rebateWhPerBean: z.number().int().min(0).max(1_000_000_000),
    beanSalePriceFen: z.number().int().min(0).max(100_000_000),
  })
  .strict();

/** An operator competes with its own bean policy: rebate rate and sale price. */
export async function setOperatorPolicy(ctx: TxContext, input: unknown): Promise<Operator> {
  const op = await requireOperatorAdmin(ctx);
  const policy = parse(operatorPolicySchema, input, 'policy');
  const updated: Operator = { ...op, ...policy };
  await putJson(ctx.store, Keys.operator(op.mspId), updated);
  await appendAudit(ctx, op.mspId, 'OperatorPolicySet', policy);
  emit(ctx, 'OperatorPolicySet', { mspId: op.mspId, ...policy });
  return updated;
}
