/**
 * Pure parsers for the text output of Slurm's CLIs, in formats that hold across versions (22.05 on
 * this project's CI, 23.02–25.x on real clusters). JSON output is not used: its schema changes
 * with every release (`squeue --json` is OpenAPI v0.0.38 in 22.05, `scontrol --json` does not
 * exist there).
 *
 *   squeue  -h -r [--states=all] -j IDS -o '%i|%T|%r|%N|%A'    (SQUEUE_FORMAT; 4 fields also accepted)
 *   sacct   -P -n -X -j IDS -o JobID,State,ExitCode,NodeList   (SACCT_FIELDS; accounting)
 *   sacct -c -P -n -o JobID,State,ExitCode,NodeList            (jobcomp/filetxt: raw job ids only)
 *   scontrol show job -o ID                                    (one line per job / array record)
 *   sbatch --parsable                                          ("ID" or "ID;cluster")
 *
 * Fixtures: test/slurm/fixtures/ (captured from the live 22.05, and built from the documented
 * formats of newer versions, labelled as such in each file).
 */

export const SQUEUE_FORMAT = '%i|%T|%r|%N|%A';
export const SACCT_FIELDS = 'JobID,State,ExitCode,NodeList';

/** Slurm's job states (long names). Compact squeue codes (`%t`) are mapped to these. */
export const ACTIVE_STATES = new Set([
  'PENDING',
  'RUNNING',
  'CONFIGURING',
  'COMPLETING',
  'SUSPENDED',
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'RESIZING',
  'SIGNALING',
  'STAGE_OUT',
  'STOPPED',
  'RESV_DEL_HOLD',
  'POWER_UP_NODE',
  'UPDATE_DB',
]);
export const TERMINAL_STATES = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
  'SPECIAL_EXIT',
  'REVOKED',
]);

const COMPACT: Record<string, string> = {
  PD: 'PENDING',
  R: 'RUNNING',
  CF: 'CONFIGURING',
  CG: 'COMPLETING',
  CD: 'COMPLETED',
  CA: 'CANCELLED',
  F: 'FAILED',
  TO: 'TIMEOUT',
  OOM: 'OUT_OF_MEMORY',
  NF: 'NODE_FAIL',
  PR: 'PREEMPTED',
  BF: 'BOOT_FAIL',
  DL: 'DEADLINE',
  S: 'SUSPENDED',
  ST: 'STOPPED',
  RQ: 'REQUEUED',
  RH: 'REQUEUE_HOLD',
  RF: 'REQUEUE_FED',
  RS: 'RESIZING',
  SE: 'SPECIAL_EXIT',
  SI: 'SIGNALING',
  SO: 'STAGE_OUT',
  RD: 'RESV_DEL_HOLD',
  RV: 'REVOKED',
};

export interface NormalisedState {
  /** The base state, e.g. CANCELLED. */
  state: string;
  /** Who cancelled (sacct writes "CANCELLED by 1000"). */
  by?: string;
  /** The text as printed. */
  raw: string;
}

/**
 * "CANCELLED by 0" → CANCELLED (by 0); "COMPLETED+" (a column truncated by sacct without -P) →
 * COMPLETED; "CA" → CANCELLED; "RUNNING,COMPLETING" style flag lists → the first state.
 */
export function normaliseState(text: string): NormalisedState {
  const raw = text.trim();
  let s = raw.replace(/\+$/, '');
  let by: string | undefined;
  const m = /^(\S+)\s+by\s+(\S+)/i.exec(s);
  if (m) {
    s = m[1]!;
    by = m[2]!;
  }
  s = s.split(/[,\s]/)[0]!.toUpperCase();
  s = COMPACT[s] ?? s;
  return by === undefined ? { state: s, raw } : { state: s, by, raw };
}

export const isActive = (state: string) => ACTIVE_STATES.has(state);
export const isTerminal = (state: string) => TERMINAL_STATES.has(state);

/** Array index expressions: "4", "4-7", "1,3-5", "0-15:4", with an optional "%K" throttle. */
export function expandIndices(expr: string): { indices: number[]; throttle?: number } {
  const [list, throttleText] = expr.split('%');
  const indices: number[] = [];
  for (const part of (list ?? '').split(',')) {
    const p = part.trim();
    if (!p) continue;
    const m = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(p);
    if (!m) throw new Error(`unreadable array index expression "${expr}"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    const step = m[3] === undefined ? 1 : Math.max(1, Number(m[3]));
    for (let i = lo; i <= hi; i += step) indices.push(i);
  }
  const throttle = throttleText !== undefined && /^\d+$/.test(throttleText) ? Number(throttleText) : undefined;
  return throttle === undefined ? { indices } : { indices, throttle };
}

export interface JobRef {
  /** The job id (for an array task: the array's job id). */
  jobId: string;
  /** One array task. */
  task?: number;
  /** Several array tasks in one record (pending tasks: "12_[4-7%2]"). */
  tasks?: number[];
  throttle?: number;
  /** A job step ("batch", "extern", "0"), when the id names one. */
  step?: string;
}

/** "12", "12_3", "12_[4-7%2]", "12_3.batch", "12.0", "12+1" (heterogeneous component) → parts. */
export function parseJobId(text: string): JobRef {
  const id = text.trim();
  const m = /^(\d+(?:\+\d+)?)(?:_(\d+|\[[^\]]*\]))?(?:\.(\S+))?$/.exec(id);
  if (!m) throw new Error(`unreadable Slurm job id "${text}"`);
  const ref: JobRef = { jobId: m[1]! };
  if (m[2] !== undefined) {
    if (m[2].startsWith('[')) {
      const { indices, throttle } = expandIndices(m[2].slice(1, -1));
      ref.tasks = indices;
      if (throttle !== undefined) ref.throttle = throttle;
    } else {
      ref.task = Number(m[2]);
    }
  }
  if (m[3] !== undefined) ref.step = m[3];
  return ref;
}

export interface ExitCode {
  code: number;
  signal: number;
}

/** "1:0" → exit code 1, signal 0; "0:15" → killed by signal 15. */
export function parseExitCode(text: string | undefined): ExitCode | undefined {
  const m = /^(\d+):(\d+)$/.exec((text ?? '').trim());
  return m ? { code: Number(m[1]), signal: Number(m[2]) } : undefined;
}

/** One job, array task or range of array tasks as one of the CLIs reported it. */
export interface SlurmRecord extends JobRef {
  /** The id as printed. */
  id: string;
  /** The unique job id of this record (squeue %A, scontrol JobId; sacct -c prints only this). */
  rawJobId?: string;
  state: string;
  stateRaw: string;
  cancelledBy?: string;
  reason?: string;
  /** Node list as printed ("n1", "n[1-2]"); absent while pending. */
  nodes?: string;
  exit?: ExitCode;
  source: 'squeue' | 'sacct' | 'sacct-jobcomp' | 'scontrol';
}

const clean = (v: string | undefined) => {
  const t = (v ?? '').trim();
  return t === '' || t === '(null)' || t === 'None assigned' || t === 'N/A' ? undefined : t;
};

function record(idText: string, stateText: string, source: SlurmRecord['source']): SlurmRecord {
  const ref = parseJobId(idText);
  const st = normaliseState(stateText);
  const rec: SlurmRecord = { id: idText.trim(), ...ref, state: st.state, stateRaw: st.raw, source };
  if (st.by !== undefined) rec.cancelledBy = st.by;
  return rec;
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '');
}

/**
 * `squeue -h -o '%i|%T|%r|%N|%A'` (or without %A). A reason never holds "|", but to be safe the
 * first two fields are read from the left and the node list (and %A) from the right.
 */
export function parseSqueue(text: string): SlurmRecord[] {
  const out: SlurmRecord[] = [];
  for (const line of lines(text)) {
    const f = line.split('|');
    if (f.length < 4) throw new Error(`unreadable squeue line "${line}" (expected ${SQUEUE_FORMAT})`);
    const hasRaw = f.length >= 5 && /^\d+$/.test(f[f.length - 1]!.trim());
    const raw = hasRaw ? f.pop()!.trim() : undefined;
    const nodes = f.pop();
    const [id, state, ...reason] = f;
    const rec = record(id!, state!, 'squeue');
    const r = clean(reason.join('|'));
    const n = clean(nodes);
    if (r !== undefined) rec.reason = r;
    if (n !== undefined) rec.nodes = n;
    // A pending element has no job of its own yet: %A prints the array's job id.
    if (raw !== undefined && !(rec.state === 'PENDING' || rec.tasks)) rec.rawJobId = raw;
    out.push(rec);
  }
  return out;
}

/**
 * `sacct -P -n [-X] -o JobID,State,ExitCode,NodeList`. With `jobcomp: true` (`sacct -c`, the
 * jobcomp/filetxt plugin) ids are the raw job ids: array tasks are not named `J_i` there.
 * Step rows (`12_3.batch`) are dropped: the job row carries the task's outcome.
 */
export function parseSacct(text: string, opts: { jobcomp?: boolean } = {}): SlurmRecord[] {
  const out: SlurmRecord[] = [];
  for (const line of lines(text)) {
    const f = line.split('|');
    if (f.length < 3) throw new Error(`unreadable sacct line "${line}" (expected ${SACCT_FIELDS} with -P)`);
    const [id, state, exit, ...nodes] = f;
    const rec = record(id!, state!, opts.jobcomp ? 'sacct-jobcomp' : 'sacct');
    if (rec.step !== undefined) continue;
    if (opts.jobcomp) rec.rawJobId = rec.jobId;
    const e = parseExitCode(exit);
    if (e) rec.exit = e;
    const n = clean(nodes.join('|'));
    if (n !== undefined) rec.nodes = n;
    out.push(rec);
  }
  return out;
}

/**
 * `scontrol show job -o`: one line per job; `Key=Value` tokens separated by spaces. Values may
 * hold spaces (a Command or WorkDir with a space), so a token starts only where " Key=" does.
 */
export function parseScontrolFields(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const re = /(?:^|\s)([A-Za-z][A-Za-z0-9_/:]*)=/g;
  const starts: Array<{ key: string; at: number; valueAt: number }> = [];
  for (let m = re.exec(line); m; m = re.exec(line)) {
    starts.push({ key: m[1]!, at: m.index, valueAt: m.index + m[0].length });
  }
  starts.forEach((s, i) => {
    const end = i + 1 < starts.length ? starts[i + 1]!.at : line.length;
    if (!(s.key in fields)) fields[s.key] = line.slice(s.valueAt, end).trim();
  });
  return fields;
}

const NO_VAL = '4294967294';

export function parseScontrolJobs(text: string): Array<SlurmRecord & { fields: Record<string, string> }> {
  const out: Array<SlurmRecord & { fields: Record<string, string> }> = [];
  for (const line of lines(text)) {
    if (!/\bJobId=/.test(line)) continue; // "No jobs in the system", warnings
    const f = parseScontrolFields(line);
    const arrayJob = f.ArrayJobId;
    const taskText = f.ArrayTaskId;
    let id = f.JobId!;
    // 4294967294 (NO_VAL): the array's own record once its remaining tasks were cancelled.
    if (arrayJob && taskText && taskText !== NO_VAL) id = /^\d+$/.test(taskText) ? `${arrayJob}_${taskText}` : `${arrayJob}_[${taskText}]`;
    else if (arrayJob) id = arrayJob;
    const rec = record(id, f.JobState ?? 'UNKNOWN', 'scontrol');
    if (!(rec.state === 'PENDING' || rec.tasks)) rec.rawJobId = f.JobId!;
    if (rec.tasks && f.ArrayTaskThrottle && /^\d+$/.test(f.ArrayTaskThrottle) && rec.throttle === undefined) {
      const t = Number(f.ArrayTaskThrottle);
      if (t > 0) rec.throttle = t;
    }
    const reason = clean(f.Reason);
    if (reason !== undefined) rec.reason = reason;
    const nodes = clean(f.NodeList);
    if (nodes !== undefined) rec.nodes = nodes;
    const exit = parseExitCode(f.ExitCode);
    if (exit) rec.exit = exit;
    out.push({ ...rec, fields: f });
  }
  return out;
}

/** `sbatch --parsable`: "12345" or "12345;cluster". */
export function parseSbatchParsable(text: string): { jobId: string; cluster?: string } {
  const line = lines(text).at(-1)?.trim() ?? '';
  const m = /^(\d+)(?:;(\S+))?$/.exec(line);
  if (!m) throw new Error(`sbatch --parsable printed "${text.trim()}", not a job id`);
  return m[2] ? { jobId: m[1]!, cluster: m[2] } : { jobId: m[1]! };
}

/** Slurm host lists: "n[1-3,7],gpu01" → n1 n2 n3 n7 gpu01 (zero padding kept). */
export function expandHostlist(text: string | undefined): string[] {
  const t = (text ?? '').trim();
  if (!t || t === '(null)' || t === 'None assigned') return [];
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of t) {
    if (ch === '[') depth += 1;
    if (ch === ']') depth -= 1;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) parts.push(cur);
  const out: string[] = [];
  for (const part of parts) {
    const m = /^([^[]*)\[([^\]]+)\](.*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    for (const piece of m[2]!.split(',')) {
      const r = /^(\d+)(?:-(\d+))?$/.exec(piece);
      if (!r) {
        out.push(`${m[1]}${piece}${m[3]}`);
        continue;
      }
      const width = r[1]!.length;
      const lo = Number(r[1]);
      const hi = r[2] === undefined ? lo : Number(r[2]);
      for (let i = lo; i <= hi; i++) out.push(`${m[1]}${String(i).padStart(width, '0')}${m[3]}`);
    }
  }
  return out;
}

/**
 * What Slurm says about array task `jobId_task`, from any of the parsed outputs: the task's own
 * record, else a range record holding it (pending tasks), else the array's bare record (the
 * not-yet-started remainder of an array, e.g. "12|CANCELLED" after the pending tasks were
 * cancelled), else a record with the task's raw job id (sacct -c).
 */
export function findTask(records: readonly SlurmRecord[], jobId: string, task: number, rawJobId?: string): SlurmRecord | undefined {
  const own = records.find((r) => r.jobId === jobId && r.task === task);
  if (own) return own;
  // Records that stand for several tasks: their raw job id is not this task's own.
  const derived = (r: SlurmRecord): SlurmRecord => {
    const { rawJobId: _raw, tasks: _tasks, throttle: _throttle, ...rest } = r;
    return { ...rest, jobId, task };
  };
  const inRange = records.find((r) => r.jobId === jobId && r.tasks?.includes(task));
  if (inRange) return derived(inRange);
  if (rawJobId) {
    const raw = records.find((r) => r.rawJobId === rawJobId && r.task === undefined && r.tasks === undefined);
    if (raw) return { ...raw, jobId, task };
  }
  const bare = records.find((r) => r.jobId === jobId && r.task === undefined && r.tasks === undefined && r.source !== 'sacct-jobcomp');
  // The bare record of an array whose other tasks are all listed: it stands for the rest.
  if (bare) return derived(bare);
  return undefined;
}
