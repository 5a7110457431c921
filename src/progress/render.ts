/**
 * Renderers for sweep progress: listr2 on a TTY (one task per run: step/total, loss, β, ETA), and
 * plain lines elsewhere (CI logs, pipes). Both consume `SweepEvent`s and print nothing else.
 */
import type { SweepEvent, SweepListener } from '../execute/events.js';
import { emptyView, formatDuration, progressText, reduce, type RunView } from './view.js';

export interface Renderer {
  listener: SweepListener;
  /** Resolve once the display is finished (listr2 has drawn its last frame). */
  done(): Promise<void>;
}

/** Plain lines: one per lifecycle change, and step lines at most every `everyMs` per run. */
export function lineRenderer(write: (line: string) => void, everyMs = 10_000): Renderer {
  const views = new Map<string, RunView>();
  const lastLine = new Map<string, number>();
  const listener: SweepListener = (event) => {
    if (event.kind === 'sweep-start') {
      write(`sweep ${event.sweep}: ${event.runs.length} runs → ${event.out}`);
      for (const r of event.runs) views.set(r.id, emptyView(r.id, r.name));
      return;
    }
    if (event.kind === 'setup') return write(event.message);
    if (event.kind === 'stage') return write(`[${event.stage}] ${event.message}`);
    if (event.kind === 'sweep-end') return;
    const view = views.get(event.id) ?? emptyView(event.id, event.name);
    views.set(event.id, view);
    reduce(view, event);
    const tag = `[${event.name}]`;
    if (event.kind === 'run-skipped') write(`${tag} skipped: ${event.reason}`);
    else if (event.kind === 'run-start') write(`${tag} started (attempt ${event.attempt}, slot ${event.slot})`);
    else if (event.kind === 'run-retry') write(`${tag} ${view.phase}`);
    else if (event.kind === 'run-end') {
      const s = event.status;
      write(
        s.state === 'succeeded'
          ? `${tag} succeeded: ${s.step}/${s.total ?? '?'} steps`
          : `${tag} ${s.state}${s.error_class ? ` [${s.error_class}]` : ''}: ${s.error ?? ''}  (log: ${s.log})`,
      );
    } else if (event.kind === 'run-event') {
      const e = event.event;
      if (e.kind === 'step') {
        const now = Date.now();
        const first = !lastLine.has(event.id);
        const last = view.total !== null && view.step >= view.total;
        if (first || last || now - (lastLine.get(event.id) ?? 0) >= everyMs) {
          lastLine.set(event.id, now);
          write(`${tag} ${progressText(view)}`);
        }
      } else if (e.kind === 'resume') write(`${tag} resuming from ${String(e.checkpoint)}`);
      else if (e.kind === 'warning') write(`${tag} warning: ${String(e.message)}`);
    }
  };
  return { listener, done: async () => undefined };
}

/** listr2's default renderer: a live task list, one task per run. */
export async function listrRenderer(): Promise<Renderer> {
  const { Listr } = await import('listr2');
  const views = new Map<string, RunView>();
  const handles = new Map<string, { output(text: string): void; title(text: string): void; skip(why: string): void }>();
  const finishers = new Map<string, { resolve(): void; reject(e: Error): void }>();
  const pending = new Map<string, SweepEvent[]>();
  let listrDone: Promise<void> = Promise.resolve();
  // Shown under the run while it runs, and again after the task list (listr redraws over its output).
  const warnings: string[] = [];

  const show = (id: string) => {
    const view = views.get(id);
    const handle = handles.get(id);
    if (!view || !handle) return;
    handle.title(`${view.name}  ${view.state === 'running' ? progressText(view) : view.state}`);
  };

  const apply = (event: SweepEvent & { id: string }) => {
    const view = views.get(event.id);
    if (!view) return;
    reduce(view, event);
    const handle = handles.get(event.id);
    if (!handle) {
      pending.set(event.id, [...(pending.get(event.id) ?? []), event]);
      return;
    }
    if (event.kind === 'run-skipped') {
      handle.skip(`${view.name}: ${event.reason}`);
      finishers.get(event.id)?.resolve();
      return;
    }
    show(event.id);
    if (event.kind === 'run-event' && event.event.kind === 'warning') {
      const text = `warning: ${String(event.event.message)}`;
      warnings.push(`[${view.name}] ${text}`);
      handle.output(text);
    }
    if (event.kind === 'run-end') {
      const s = event.status;
      if (s.state === 'succeeded') {
        handle.title(`${view.name}  ${s.step}/${s.total ?? '?'} steps  loss ${view.loss?.toPrecision(4) ?? '-'}`);
        finishers.get(event.id)?.resolve();
      } else {
        finishers.get(event.id)?.reject(new Error(`${view.name}: ${s.state} [${s.error_class}] ${s.error ?? ''}`));
      }
    }
  };

  const listener: SweepListener = (event) => {
    if (event.kind === 'sweep-start') {
      for (const r of event.runs) views.set(r.id, emptyView(r.id, r.name));
      const list = new Listr(
        event.runs.map((r) => ({
          title: `${r.name}  queued`,
          task: (_ctx: unknown, task: { title: string; output: string; skip(msg: string): void }) =>
            new Promise<void>((resolve, reject) => {
              finishers.set(r.id, { resolve, reject });
              handles.set(r.id, {
                output: (text) => (task.output = text),
                title: (text) => (task.title = text),
                skip: (why) => task.skip(why),
              });
              for (const e of pending.get(r.id) ?? []) apply(e as SweepEvent & { id: string });
              pending.delete(r.id);
            }),
        })),
        { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: false } },
      );
      listrDone = list.run().then(
        () => undefined,
        () => undefined,
      );
      return;
    }
    if (event.kind === 'sweep-end') {
      // Runs that never started (a stop request) end as queued: release their tasks.
      for (const [id, f] of finishers) if (views.get(id)?.state === 'queued') f.reject(new Error('not run'));
      return;
    }
    if (event.kind === 'setup') return;
    if (event.kind === 'stage') {
      // After training: listr has drawn its last frame, plain lines from here on.
      void listrDone.then(() => process.stderr.write(`[${event.stage}] ${event.message}\n`));
      return;
    }
    apply(event);
  };
  return {
    listener,
    done: () =>
      listrDone.then(() => {
        for (const w of [...new Set(warnings)]) process.stderr.write(`${w}\n`);
      }),
  };
}

export { formatDuration };
