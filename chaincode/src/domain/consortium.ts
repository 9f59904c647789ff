/**
 * Consortium membership: operators (MSP id + English name), their margin deposits into the pool,
 * auditor organizations, the pool's custodian, and who may do what. Only an operator's own identities act
 * for it; auditors read everything and write nothing, except that the custodian confirms pool money.
 *
 * CUSTODIAN RULE (written once): the pool has a custodian, an organization named in the genesis document
 * (`custodianMspId`; by default the first auditor organization, as a regulator or an escrow bank would
 * be) that is not an operator. Money into or out of the pool is never taken on the word of an operator,
 * who would vouch for itself or for a fellow debtor: an operator's admin declares its margin paid
 * (PayMargin) and only the custodian's admin confirms it (ConfirmMargin); only a confirmed margin makes
 * the operator a member (quorum, votes, every member transaction) and counts in the pool's balance. The
 * pool's side of every clearing transfer is confirmed by the custodian's admin alone (clearing.ts).
 */
import { z } from 'zod';
import { sm3Hex } from '../crypto';
import {
  getOperator,
  refuseAuditor,
  requireAdminRole,
  requireCustodianAdmin,
  requireOperatorAdmin,
  type Consortium,
  type Operator,
} from './access';
import { canonicalJson } from './canonical';
import type { TxContext } from './context';
import { fail } from './errors';
import { Keys } from './keys';
import { paramsAt, paramsDraftSchema, type Params } from './params';
import { exists, getJson, putJson, emit } from './state';
import { tariffDraftSchema, type Tariff } from './tariff';
import { idSchema, mspIdSchema, parse } from './validate';
import { appendAudit } from './audit';
import { poolCredit } from './pool';

export const operatorNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z][A-Za-z0-9 &.-]*$/, 'English name: letters, digits, spaces, "&", "." or "-"');

export const initSchema = z
  .object({
    /** Names this deployment in every signed message; give each deployment its own (e.g. "evpay-cn-prod"). */
    networkId: idSchema,
    operators: z
      .array(z.object({ mspId: mspIdSchema, name: operatorNameSchema }).strict())
      .min(1)
      .max(64),
    auditorMspIds: z.array(mspIdSchema).max(16),
    /** The pool's custodian (CUSTODIAN RULE); defaults to the first auditor organization. */
    custodianMspId: mspIdSchema.optional(),
    params: paramsDraftSchema,
    tariff: tariffDraftSchema,
  })
  .strict();

export type GenesisDocument = z.output<typeof initSchema>;

const digestOf = (doc: GenesisDocument): string => sm3Hex(canonicalJson(doc));
/** SM3 of the genesis document's canonical JSON: what the founding operators agree on and pin. */
export function genesisDigest(input: unknown): string {
  return digestOf(parse(initSchema, input, 'init'));
}

const pinSchema = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * One-time bootstrap by an admin of one of the founding operators. Any member's admin could otherwise
 * initialize the consortium with a membership or parameters of its own choosing, and every peer would
 * endorse it. So each operator pins, on its own peers, the digest of the genesis document it agreed to
 * (`pinnedDigest`, from the peer's configuration): a peer endorses no other InitConsortium, and under
 * an endorsement policy that needs several operators, no single member can initialize alone.
 */
export async function initConsortium(
  ctx: TxContext,
  input: unknown,
  pinnedDigest: string | undefined,
): Promise<Consortium> {
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
  const custodian = req.custodianMspId ?? req.auditorMspIds[0];
  if (custodian === undefined)
    fail('INVALID_ARGUMENT', 'the pool needs a custodian: name custodianMspId or an auditor organization', {
      path: 'init.custodianMspId',
    });
  if (msps.has(custodian))
    fail('INVALID_ARGUMENT', 'the custodian of the pool cannot be an operator', {
      path: 'init.custodianMspId',
    });
  if (pinnedDigest === undefined || !pinSchema.safeParse(pinnedDigest).success)
    fail(
      'GENESIS_NOT_PINNED',
      'this peer has no genesis digest pinned (EVPAY_GENESIS_SM3, 64 lowercase hex) and endorses no InitConsortium',
    );
  const digest = digestOf(req);
  if (digest !== pinnedDigest)
    fail('GENESIS_MISMATCH', 'the genesis document is not the one pinned on this peer', {
      digest,
      pinned: pinnedDigest,
    });
  const consortium: Consortium = {
    auditorMspIds: req.auditorMspIds,
    custodianMspId: custodian,
    initializedAt: ctx.now,
    initializedBy: ctx.caller.mspId,
    genesisSm3: digest,
    networkId: req.networkId,
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
    custodianMspId: custodian,
  });
  emit(ctx, 'ConsortiumInitialized', { operators: req.operators.map((o) => o.mspId) });
  return consortium;
}

export function newOperator(ctx: TxContext, mspId: string, name: string): Operator {
  return { mspId, name, admittedAt: ctx.now, marginPaidFen: 0, rebateWhPerBean: 0, beanSalePriceFen: 0 };
}

/**
 * The operator's admin declares that its margin deposit was paid to the pool's custodian (CUSTODIAN
 * RULE): nothing counts until the custodian confirms it. Declared once; a replay is refused.
 */
export async function payMargin(ctx: TxContext): Promise<Operator> {
  await refuseAuditor(ctx);
  const op = await getJson<Operator>(ctx.store, Keys.operator(ctx.caller.mspId));
  if (!op) return fail('NOT_AN_OPERATOR', `${ctx.caller.mspId} is not a consortium operator`);
  requireAdminRole(ctx);
  if (op.marginPaidFen > 0) fail('MARGIN_ALREADY_PAID', `${op.name} has already paid its margin`);
  if (op.marginDeclaredAt !== undefined)
    fail('MARGIN_ALREADY_DECLARED', `${op.name} already declared its margin; the custodian confirms it`);
  const params = await paramsAt(ctx.store, ctx.now);
  const updated: Operator = { ...op, marginDeclaredFen: params.marginFen, marginDeclaredAt: ctx.now };
  await putJson(ctx.store, Keys.operator(op.mspId), updated);
  await appendAudit(ctx, op.mspId, 'MarginDeclared', { amountFen: params.marginFen });
  emit(ctx, 'MarginDeclared', { mspId: op.mspId, amountFen: params.marginFen });
  return updated;
}

/**
 * The custodian's admin confirms that an operator's declared margin reached the pool (CUSTODIAN RULE):
 * the operator becomes a member and the margin enters the pool's balance. Once per operator.
 */
export async function confirmMargin(ctx: TxContext, mspIdInput: unknown): Promise<Operator> {
  const custodian = await requireCustodianAdmin(ctx);
  const mspId = parse(mspIdSchema, mspIdInput, 'mspId');
  const op = await getOperator(ctx, mspId);
  if (op.marginPaidFen > 0) fail('MARGIN_ALREADY_PAID', `${op.name} has already paid its margin`);
  if (op.marginDeclaredAt === undefined || op.marginDeclaredFen === undefined)
    return fail('MARGIN_NOT_DECLARED', `${op.name} has not declared its margin paid`);
  const amountFen = op.marginDeclaredFen;
  const updated: Operator = { ...op, marginPaidFen: amountFen, marginPaidAt: ctx.now };
  await putJson(ctx.store, Keys.operator(op.mspId), updated);
  await poolCredit(ctx, amountFen, 'margin', op.mspId);
  await appendAudit(ctx, op.mspId, 'MarginPaid', { amountFen, custodian });
  emit(ctx, 'MarginPaid', { mspId: op.mspId, amountFen });
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
