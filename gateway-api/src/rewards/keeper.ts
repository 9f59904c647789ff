/**
 * The reward keeper, one in each operator's gateway (on by default): it follows the committed blocks
 * from the witness head on (the head on chain is its checkpoint, so a restart or another keeper's claims
 * lose nothing) and claims them with their evidence (ClaimBlockRewards). Blocks with no business
 * transaction (the keepers' own claims, configuration) wait until a business block follows, so an idle
 * network stays idle instead of claiming its claims forever.
 *
 * STAGGER RULE: the keeper of the operator at index (block mod operators) in name order claims a ready
 * batch at once; every other keeper waits `staggerMs` per place behind it and first checks whether the
 * head moved. So one keeper normally claims each batch, and a stopped keeper delays rewards by seconds.
 */
import {
  MAX_CLAIM_BLOCKS,
  blockDataKey,
  isRewardOverhead,
  readBlockData,
  type WitnessHead,
} from '@evpay/chaincode/client';
import type { Logger } from 'pino';
import { ChaincodeRejection, TransactionInvalidated } from '../fabric/errors';
import type { OrgLedger } from '../fabric/orgLedger';
import { evidenceOf, type EvidenceWithData } from './evidence';

export interface KeeperOptions {
  staggerMs: number;
}

export interface KeeperStats {
  claims: number;
  blocksWitnessed: number;
  rewardedFen: number;
  lastError?: string;
}

export class RewardKeeper {
  private stopped = false;
  private readonly pending: EvidenceWithData[] = [];
  private close: (() => void) | undefined;
  /** This operator's place among the operators in English-name order, and how many there are. */
  private place = { index: 0, operators: 1 };
  readonly stats: KeeperStats = { claims: 0, blocksWitnessed: 0, rewardedFen: 0 };

  constructor(
    private readonly ledger: OrgLedger,
    private readonly logger: Logger,
    private readonly opts: KeeperOptions,
  ) {}

  /** The witness head (block 0 before the first claim). */
  private async head(): Promise<WitnessHead> {
    const bytes = await this.ledger.evaluate('client', 'GetWitnessHead', []);
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as WitnessHead;
  }

  /** Runs until stop(); every failure is logged and followed by a fresh start from the head. */
  async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.follow();
      } catch (e) {
        this.stats.lastError = (e as Error).message;
        if (!this.stopped) this.logger.warn({ err: e }, 'reward keeper: restarting from the witness head');
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 2_000));
    }
  }

  stop(): void {
    this.stopped = true;
    this.close?.();
  }

  private async follow(): Promise<void> {
    this.pending.length = 0;
    const view = JSON.parse(
      Buffer.from(await this.ledger.evaluate('client', 'GetConsortium', [])).toString('utf8'),
    ) as {
      operators: Array<{ mspId: string; name: string }>;
    };
    const names = view.operators.map((o) => o.name).sort();
    const mine = view.operators.find((o) => o.mspId === this.ledger.mspId);
    this.place = { index: mine ? names.indexOf(mine.name) : 0, operators: Math.max(1, names.length) };
    const head = await this.head();
    const start = BigInt(head.block + 1);
    const blocks = await this.ledger.blocks(start);
    this.close = () => blocks.close();
    this.logger.info({ fromBlock: String(start) }, 'reward keeper following blocks');
    for await (const block of blocks) {
      if (this.stopped) break;
      const ev = evidenceOf(block);
      this.pending.push(ev);
      const business = readBlockData(ev.data, isRewardOverhead).businessTransactions > 0;
      if (business || this.pending.length >= MAX_CLAIM_BLOCKS) await this.claimPending();
    }
  }

  private async claimPending(): Promise<void> {
    const last = this.pending[this.pending.length - 1];
    if (!last) return;
    const { index, operators } = this.place;
    const { staggerMs } = this.opts;
    const place = (index - (last.evidence.number % operators) + operators) % operators;
    if (place > 0) {
      await new Promise((r) => setTimeout(r, place * staggerMs));
      const head = await this.head();
      if (head.block >= last.evidence.number) {
        this.pending.length = 0;
        return;
      }
      // Another keeper claimed part of it: keep what is left.
      while (
        head &&
        this.pending.length > 0 &&
        (this.pending[0] as EvidenceWithData).evidence.number <= head.block
      )
        this.pending.shift();
    }
    while (this.pending.length > 0) {
      const batch = this.pending.slice(0, MAX_CLAIM_BLOCKS);
      const transient = Object.fromEntries(batch.map((b) => [blockDataKey(b.evidence.number), b.data]));
      try {
        const c = await this.ledger.submit(
          'client',
          'ClaimBlockRewards',
          [JSON.stringify({ blocks: batch.map((b) => b.evidence) })],
          {},
          transient,
        );
        const r = JSON.parse(Buffer.from(c.result).toString('utf8')) as {
          witnessed: number;
          rewardedFen: number;
        };
        this.stats.claims++;
        this.stats.blocksWitnessed += r.witnessed;
        this.stats.rewardedFen += r.rewardedFen;
        this.logger.info(
          {
            from: batch[0]?.evidence.number,
            to: batch[batch.length - 1]?.evidence.number,
            rewardedFen: r.rewardedFen,
            txId: c.txId,
          },
          'blocks witnessed and rewarded',
        );
        this.pending.splice(0, batch.length);
      } catch (e) {
        const code = e instanceof ChaincodeRejection ? e.error.code : undefined;
        if (
          code === 'BLOCK_ALREADY_WITNESSED' ||
          code === 'BLOCK_OUT_OF_ORDER' ||
          e instanceof TransactionInvalidated
        ) {
          // Another keeper was first: continue after the head it left.
          const head = await this.head();
          while (
            this.pending.length > 0 &&
            head &&
            (this.pending[0] as EvidenceWithData).evidence.number <= head.block
          )
            this.pending.shift();
          if (code === 'BLOCK_OUT_OF_ORDER') throw e; // a gap: start again from the head
          continue;
        }
        throw e;
      }
    }
  }
}
