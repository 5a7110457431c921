import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { loadPlan } from '../../src/plan/load.js';
import { CWD, loadFromMemory, positions, problems, yaml } from './helpers.js';

const FIXTURES = 'test/fixtures/plans';
const fixture = (name: string) => `${FIXTURES}/${name}`;

async function rejection(file: string, sets?: string[]): Promise<InputError> {
  const error = await loadPlan(file, sets ? { sets } : {}).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InputError);
  return error as InputError;
}

describe('loadPlan: valid plans', () => {
  it('loads a plan and makes relative dataset paths absolute against the plan folder', async () => {
    const { plan, warnings, file } = await loadPlan(fixture('basic.yaml'));
    expect(file).toBe(path.resolve(fixture('basic.yaml')));
    expect(warnings).toEqual([]);
    expect(plan.name).toBe('beta-scan');
    expect(plan.base?.dataset?.path).toBe(path.resolve(FIXTURES, 'data/hh.jsonl'));
    expect(plan.sweep?.list?.map((v) => v.name)).toEqual(['dpo', 'ipo']);
    // Defaults are not applied to the plan: they belong to each resolved run.
    expect(plan.base?.training).toEqual({ max_steps: 20, batch_size: 2 });
    expect(plan.base).not.toHaveProperty('beta');
  });

  it('accepts every section of the contract plan shape, with warnings for overridden base values', async () => {
    const { plan, warnings } = await loadPlan(fixture('full.yaml'));
    expect(plan.executor?.kind).toBe('slurm');
    expect(plan.sweep?.random).toEqual({ count: 2, seed: 3, params: { 'training.learning_rate': { log_uniform: [1e-7, 1e-5] } } });
    expect(warnings).toEqual([
      `${FIXTURES}/full.yaml:18:3  base.beta: overridden in every run by sweep.grid.beta`,
      `${FIXTURES}/full.yaml:24:5  base.training.learning_rate: overridden in every run by sweep.random.params["training.learning_rate"]`,
      `${FIXTURES}/full.yaml:32:5  base.training.seed: overridden in every run by sweep.seeds`,
    ]);
  });

  it('resolves extends: parent keys merge, this file wins, lists are replaced, parent paths stay relative to the parent', async () => {
    const { plan } = await loadPlan(fixture('extends/child.yaml'));
    expect(plan.name).toBe('child');
    expect(plan.base?.training).toEqual({ max_steps: 10, batch_size: 2 });
    expect(plan.sweep?.grid).toEqual({ beta: [0.1, 0.2] });
    expect(plan.sweep?.seeds).toEqual([7]);
    expect(plan).not.toHaveProperty('extends');
    expect(plan.base?.dataset?.path).toBe(path.resolve(FIXTURES, 'extends/data/hh.jsonl'));
  });

  it('resolves an absolute extends path, and the parent\'s relative paths against the parent', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'plan-extends-'));
    try {
      const parent = path.join(dir, 'a', 'parent.yaml');
      mkdirSync(path.dirname(parent));
      mkdirSync(path.join(dir, 'b'));
      writeFileSync(parent, 'name: parent\nbase:\n  dataset: {path: ./d.jsonl}\n  beta: 0\n');
      writeFileSync(path.join(dir, 'a', 'd.jsonl'), '{}\n');
      writeFileSync(path.join(dir, 'b', 'child.yaml'), `name: child\nextends: ${parent}\n`);
      const error = await loadPlan(path.join(dir, 'b', 'child.yaml')).then(() => undefined, (e: unknown) => e);
      // The parent's own problem is shown in the parent file, at its absolute path.
      expect((error as InputError).details).toEqual([`${parent}:4:3  base.beta: expected a number > 0, received 0`]);
      writeFileSync(parent, 'name: parent\nbase:\n  dataset: {path: ./d.jsonl}\n');
      const { plan } = await loadPlan(path.join(dir, 'b', 'child.yaml'));
      expect(plan.base?.dataset?.path).toBe(path.join(dir, 'a', 'd.jsonl'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts dotted keys in base and variants', async () => {
    const { plan } = await loadFromMemory({
      'plan.yaml': yaml`
        name: dotted
        base:
          dataset.path: /data/hh.jsonl
          training.max_steps: 5
          training: {batch_size: 2}
        sweep:
          list:
            - name: a
              training.grad_accum: 4
      `,
    });
    expect(plan.base).toEqual({ dataset: { path: '/data/hh.jsonl' }, training: { max_steps: 5, batch_size: 2 } });
    expect(plan.sweep?.list?.[0]).toEqual({ name: 'a', training: { grad_accum: 4 } });
  });

  it('ignores top-level x- keys, which hold anchors', async () => {
    const { plan } = await loadFromMemory({
      'plan.yaml': yaml`
        name: anchors
        x-common: &common
          dataset: {name: hh}
          beta: 0.3
        base: *common
      `,
    });
    expect(plan).toEqual({ name: 'anchors', base: { dataset: { name: 'hh' }, beta: 0.3 } });
  });

  it('resolves ./model folders and existing local folders, keeps hub ids and builtins', async () => {
    const { plan } = await loadFromMemory(
      {
        'plan.yaml': yaml`
          name: models
          base: {dataset: {name: hh}, model: ./ckpt, reference: org/model}
          sweep:
            grid:
              model: [builtin:tiny-llama, local-dir, org/other, ../up]
        `,
      },
      { isDirectory: (p) => p === path.resolve(CWD, 'local-dir') },
    );
    expect(plan.base?.model).toBe(path.resolve(CWD, 'ckpt'));
    expect(plan.base?.reference).toBe('org/model');
    expect(plan.sweep?.grid?.['model']).toEqual(['builtin:tiny-llama', path.resolve(CWD, 'local-dir'), 'org/other', path.resolve(CWD, '../up')]);
  });
});

describe('loadPlan: local paths that are not there', () => {
  const files = new Map<string, 'file' | 'dir'>([
    [path.resolve(CWD, 'data/hh.jsonl'), 'file'],
    [path.resolve(CWD, 'sub/sft.jsonl'), 'file'],
    [path.resolve(CWD, 'ckpt'), 'dir'],
    [path.resolve(CWD, 'ckpt/config.json'), 'file'],
    [path.resolve(CWD, 'ckpt/model.safetensors'), 'file'],
    [path.resolve(CWD, 'adapter'), 'dir'],
    [path.resolve(CWD, 'adapter/adapter_config.json'), 'file'],
    [path.resolve(CWD, 'adapter/adapter_model.safetensors'), 'file'],
    [path.resolve(CWD, 'half-copied'), 'dir'],
    [path.resolve(CWD, 'half-copied/config.json'), 'file'],
    [path.resolve(CWD, 'empty-dir'), 'dir'],
    [path.resolve(CWD, 'weights.bin'), 'file'],
  ]);
  const pathKind = (p: string) => files.get(p);

  it('reports a missing dataset file and a missing or non-folder local model where each was written', async () => {
    const error = await loadFromMemory(
      {
        'parent.yaml': yaml`
          name: parent
          stages:
            sft: {dataset: {path: nope/sft.jsonl}}
        `,
        'plan.yaml': yaml`
          name: paths
          extends: parent.yaml
          base:
            model: ./ckpt
            reference: org/hub-model
            dataset: {path: data/hh.jsonl}
          sweep:
            list:
              - name: a
                dataset.path: data/typo.jsonl
              - name: b
                model: ./weights.bin
            grid:
              reference: [builtin:tiny-llama, /abs/missing-model]
        `,
      },
      { pathKind, sets: ['stages.sft.dataset.path=sub/missing.jsonl'] },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).details).toEqual([
      `plan.yaml:10:7  sweep.list[0].dataset.path: no such file or folder: ${path.resolve(CWD, 'data/typo.jsonl')} (a relative dataset.path is read from the folder of the file that wrote it)`,
      `plan.yaml:12:7  sweep.list[1].model: ${path.resolve(CWD, 'weights.bin')} is a file; a local model is a folder (config.json, weights, tokenizer)`,
      'plan.yaml:14:37  sweep.grid.reference[1]: no such model folder: /abs/missing-model (a hub id is written without ./, ../ or a leading /)',
      `--set stages.sft.dataset.path=sub/missing.jsonl  stages.sft.dataset.path: no such file or folder: ${path.resolve(CWD, 'sub/missing.jsonl')} (a relative dataset.path is read from the folder of the file that wrote it)`,
    ]);
  });

  it('reports a local model folder without config.json or without weights', async () => {
    const folders = yaml`
      name: folders
      base: {dataset: {path: data/hh.jsonl}}
      sweep:
        grid:
          model: [./ckpt, ./adapter, ./half-copied, ./empty-dir]
    `;
    expect(await loadFromMemory({ 'plan.yaml': folders }, { pathKind }).then(() => [], (e: InputError) => e.details)).toEqual([
      `plan.yaml:5:32  sweep.grid.model[2]: ${path.resolve(CWD, 'half-copied')} has no model weights (model.safetensors, a sharded index, pytorch_model.bin or an adapter's): a copy or download that did not finish?`,
      `plan.yaml:5:47  sweep.grid.model[3]: ${path.resolve(CWD, 'empty-dir')} is not a model folder: it has no config.json (nor an adapter's adapter_config.json)`,
    ]);
  });

  it('accepts a plan whose local paths all exist, and skips the check with pathKind: false', async () => {
    const plan = yaml`
      name: ok
      base: {model: ./ckpt, dataset: {path: data/hh.jsonl}}
    `;
    await expect(loadFromMemory({ 'plan.yaml': plan }, { pathKind })).resolves.toMatchObject({ plan: { name: 'ok' } });
    const missing = yaml`
      name: unchecked
      base: {model: ./nothing, dataset: {path: nothing.jsonl}}
    `;
    await expect(loadFromMemory({ 'plan.yaml': missing }, { pathKind: false })).resolves.toMatchObject({ plan: { name: 'unchecked' } });
  });

  it('checks against the disk by default', async () => {
    const error = await rejection(fixture('basic.yaml'), ['base.dataset.path=data/not-there.jsonl']);
    expect(error.details).toEqual([
      `--set base.dataset.path=data/not-there.jsonl  base.dataset.path: no such file or folder: ${path.resolve('data/not-there.jsonl')} (a relative dataset.path is read from the folder of the file that wrote it)`,
    ]);
  });
});

describe('loadPlan: --set overrides', () => {
  const plan = yaml`
    name: base
    base:
      dataset: {name: hh}
    sweep:
      list:
        - name: dpo
        - name: ipo
          loss_type: [ipo]
      grid:
        beta: [0.1]
  `;

  it('parses values as YAML and applies them after extends', async () => {
    const { plan: p } = await loadFromMemory(
      { 'plan.yaml': plan },
      {
        sets: [
          'base.beta=0.2',
          'base.loss_type=[sigmoid, hinge]',
          'base.training.batch_size=4',
          'sweep.grid.label_smoothing=[0, 0.1]',
          'sweep.list.ipo.beta=0.5',
          'sweep.list.0.training.max_steps=5',
          'name=renamed',
        ],
        rules: [],
      },
    );
    expect(p.name).toBe('renamed');
    expect(p.base).toEqual({ dataset: { name: 'hh' }, beta: 0.2, loss_type: ['sigmoid', 'hinge'], training: { batch_size: 4 } });
    expect(p.sweep?.grid).toEqual({ beta: [0.1], label_smoothing: [0, 0.1] });
    expect(p.sweep?.list).toEqual([
      { name: 'dpo', training: { max_steps: 5 } },
      { name: 'ipo', loss_type: ['ipo'], beta: 0.5 },
    ]);
  });

  it('keeps a dotted grid key whole', async () => {
    const { plan: p } = await loadFromMemory({ 'plan.yaml': plan }, { sets: ['sweep.grid.training.batch_size=[1, 2]'] });
    expect(p.sweep?.grid).toEqual({ beta: [0.1], 'training.batch_size': [1, 2] });
  });

  it('overrides a value the file wrote with a dotted key (base, variant, stage) instead of reporting a clash', async () => {
    const dotted = yaml`
      name: dotted
      stages:
        sft:
          dataset.name: hh
          training.max_steps: 2
      base:
        dataset.name: hh
        training.max_steps: 3
        training.batch_size: 2
      sweep:
        list:
          - name: a
            dynamic_beta.alpha: 0.01
            algorithm: dynamic-beta-dpo
    `;
    const { plan: p } = await loadFromMemory(
      { 'plan.yaml': dotted },
      { sets: ['base.training.max_steps=5', 'sweep.list.a.dynamic_beta.alpha=0.5', 'stages.sft.training.max_steps=4'] },
    );
    expect(p.base?.training).toEqual({ max_steps: 5, batch_size: 2 });
    expect(p.sweep?.list?.[0]).toEqual({ name: 'a', dynamic_beta: { alpha: 0.5 }, algorithm: 'dynamic-beta-dpo' });
    expect(p.stages?.sft?.training).toEqual({ max_steps: 4 });
    // A --set value may itself use dotted keys.
    const { plan: q } = await loadFromMemory({ 'plan.yaml': dotted }, { sets: ['base={dataset.name: hh2, training.max_steps: 7}'] });
    expect(q.base).toEqual({ dataset: { name: 'hh2' }, training: { max_steps: 7 } });
  });

  it('lets a child plan remove what its parent sets with null, and says what null means in a plan that extends nothing', async () => {
    const files = {
      'parent.yaml': yaml`
        name: parent
        base:
          dataset.name: hh
          beta: 0.3
          training: {max_steps: 3, batch_size: 2}
        sweep:
          grid: {beta: [0.1, 0.2]}
          seeds: [1, 2]
      `,
      'plan.yaml': yaml`
        name: child
        extends: parent.yaml
        base:
          beta:
          training: {max_steps: null}
          loss_type: ~
          peft: {r: null}
        sweep:
          grid: null
      `,
    };
    const { plan: p } = await loadFromMemory(files);
    expect(p.base).toEqual({ dataset: { name: 'hh' }, training: { batch_size: 2 }, peft: {} });
    expect(p.sweep).toEqual({ seeds: [1, 2] });
    expect(
      await problems(yaml`
        name: alone
        base:
          dataset: {name: hh}
          beta:
      `),
    ).toEqual([
      'plan.yaml:4:3  base.beta: expected a number > 0, received null (leave the key out for its default; null only removes a key that the plan this one extends sets, or with --set key=null)',
    ]);
  });

  it('merges a child plan over a parent that wrote the same settings dotted (and the other way round)', async () => {
    const { plan: p } = await loadFromMemory({
      'parent.yaml': yaml`
        name: parent
        base:
          dataset.name: hh
          training.max_steps: 3
          training: {batch_size: 2}
      `,
      'plan.yaml': yaml`
        name: child
        extends: parent.yaml
        base:
          training: {max_steps: 5}
          dataset.split: test
      `,
    });
    expect(p.base).toEqual({ dataset: { name: 'hh', split: 'test' }, training: { max_steps: 5, batch_size: 2 } });
  });

  it('removes a key, a list item or a whole section with --set key=null, and warns when there was nothing to remove', async () => {
    const { plan: p, warnings } = await loadFromMemory(
      { 'plan.yaml': plan },
      { sets: ['sweep.list.dpo=null', 'sweep.grid.beta=~', 'base.dataset.name=null', 'base.dataset.path=./d.jsonl', 'base.bta=null'], rules: [] },
    );
    // The item after the removed one keeps its values; the grid with its only axis removed is empty.
    expect(p.sweep?.list).toEqual([{ name: 'ipo', loss_type: ['ipo'] }]);
    expect(p.sweep?.grid).toEqual({});
    expect(p.base?.dataset).toEqual({ path: path.resolve(CWD, 'd.jsonl') });
    expect(warnings).toEqual(['--set base.bta=null  removes nothing: base.bta is not set in the plan']);
    const { plan: q } = await loadFromMemory({ 'plan.yaml': plan }, { sets: ['sweep=null'] });
    expect(q.sweep).toBeUndefined();
    // A problem in an item after a removed one is still reported where the file wrote it.
    const shifted = await problems(
      yaml`
        name: base
        base: {dataset: {name: hh}}
        sweep:
          list:
            - name: dpo
            - name: ipo
              beta: -1
      `,
      { sets: ['sweep.list.0=null'] },
    );
    expect(shifted).toEqual(['plan.yaml:7:7  sweep.list[0].beta: expected a number > 0, received -1']);
  });

  it('picks a list item whose name holds dots, the longest matching name first', async () => {
    const dotted = yaml`
      name: names
      base: {dataset: {name: hh}}
      sweep:
        list:
          - {name: b0, beta: 0.1}
          - {name: b0.5, beta: 0.5}
          - {name: b0.5.x, beta: 0.7}
    `;
    const { plan: p } = await loadFromMemory({ 'plan.yaml': dotted }, { sets: ['sweep.list.b0.5.beta=0.6', 'sweep.list.b0.5.x=null', 'sweep.list.b0.training.max_steps=3'] });
    expect(p.sweep?.list).toEqual([
      { name: 'b0', beta: 0.1, training: { max_steps: 3 } },
      { name: 'b0.5', beta: 0.6 },
    ]);
  });

  it('reports problems in set values at the --set, and malformed --set arguments', async () => {
    expect(
      await problems(plan, { sets: ['base.training.batch_size=eight', 'nokey', 'base.beta=', 'sweep.list.nope.beta=1', 'base.beta=[1'] }),
    ).toEqual([
      '--set base.training.batch_size=eight  base.training.batch_size: expected a positive integer, received "eight"',
      '--set nokey  expected key=value (e.g. --set base.beta=0.2)',
      '--set base.beta=  no value after "=" (write base.beta=<value>)',
      '--set sweep.list.nope.beta=1  no item named "nope" in sweep.list',
      '--set base.beta=[1  the value is not valid YAML: unexpected end of the stream within a flow collection',
    ]);
  });
});

describe('loadPlan: the hostile corpus', () => {
  it('reports every problem of a plan at once, each where it was written', async () => {
    const error = await rejection(fixture('hostile.yaml'));
    expect(error.message).toBe(`invalid plan ${FIXTURES}/hostile.yaml: 23 problems`);
    // Positions counted by hand in hostile.yaml (line:col of the key, or of the offending item).
    expect(positions(error.details).map((p) => p.replace(`${FIXTURES}/hostile.yaml:`, ''))).toEqual([
      '1:1', // name: "beta scan"
      '2:1', // bogus_top
      '5:34', // dataset.fromat
      '6:3', // trainig
      '8:5', // batch_size: eight
      '9:5', // learning_rate: 1e400
      '10:5', // max_steps: 2**70
      '11:5', // gradient_checkpointing: maybe
      '12:24', // loss_type item "bogus"
      '13:3', // label_smoothing: 0.7
      '17:7', // duplicate variant name
      '18:7', // training.epochs: -1 (dotted key)
      '19:7', // variant without a name
      '21:18', // grid beta -1
      '21:22', // grid beta "x"
      '22:5', // grid key typo
      '23:5', // empty grid axis
      '25:5', // random.count: 0
      '27:32', // log_uniform lo = 0
      '28:31', // uniform with one bound
      '29:7', // unknown distribution
      '30:14', // seeds item "two"
      '31:8', // eval.max_new_tokens: 0
    ]);
    expect(error.details.map((l) => l.replace(`${FIXTURES}/hostile.yaml:`, ''))).toMatchInlineSnapshot(`
      [
        "1:1  name: expected a name of letters, digits, ".", "_" or "-", received "beta scan"",
        "2:1  bogus_top: unknown key — allowed here: name, extends, stages, base, sweep, eval, judge, report, executor, retries",
        "5:34  base.dataset.fromat: unknown key — did you mean "format"?",
        "6:3  base.trainig: unknown key — did you mean "training"?",
        "8:5  base.training.batch_size: expected a positive integer, received "eight"",
        "9:5  base.training.learning_rate: 1e400 is out of range (too large for a 64-bit float)",
        "10:5  base.training.max_steps: 1180591620717411303424 is too large for an exact integer (at most 9007199254740991)",
        "11:5  base.training.gradient_checkpointing: expected one of true | false | auto, received "maybe"",
        "12:24  base.loss_type[1]: expected one of sigmoid | hinge | ipo | exo_pair | nca_pair | robust | bco_pair | sppo_hard | aot | aot_unpaired | apo_zero | apo_down | discopop | sft | sigmoid_norm, received "bogus"",
        "13:3  base.label_smoothing: expected a number >= 0 and < 0.5, received 0.7",
        "17:7  sweep.list[1].name: variant name "dpo" is already used by sweep.list[0]",
        "18:7  sweep.list[1].training.epochs: expected a number > 0, received -1",
        "19:7  sweep.list[2].name: missing (expected a name of letters, digits, ".", "_" or "-")",
        "21:18  sweep.grid.beta[1]: expected a number > 0, received -1",
        "21:22  sweep.grid.beta[2]: expected a number > 0, received "x"",
        "22:5  sweep.grid["training.grad_acum"]: "training.grad_acum" is not a run setting — did you mean "training.grad_accum"?",
        "23:5  sweep.grid.label_smoothing: empty list: the sweep would have no runs",
        "25:5  sweep.random.count: expected a positive integer, received 0",
        "27:32  sweep.random.params["training.learning_rate"].log_uniform: log_uniform range [0, 0.00001] needs lo > 0",
        "28:31  sweep.random.params["training.warmup_steps"].uniform: expected a list [lo, hi] of two numbers, received [10]",
        "29:7  sweep.random.params["training.max_length"]: expected {uniform: [lo, hi]} | {log_uniform: [lo, hi]} | {choice: [values]}, received {"normal":[0,1]}",
        "30:14  sweep.seeds[1]: expected a non-negative integer, received "two"",
        "31:8  eval.max_new_tokens: expected a positive integer, received 0",
      ]
    `);
  });

  it('reports a YAML syntax error with line, column and reason, and nothing else', async () => {
    const error = await rejection(fixture('syntax-error.yaml'));
    expect(error.details).toEqual([`${FIXTURES}/syntax-error.yaml:4:12  YAML syntax error: bad indentation of a mapping entry`]);
  });

  it('rejects several documents in one file', async () => {
    const error = await rejection(fixture('multi-doc.yaml'));
    expect(error.details).toEqual([
      `${FIXTURES}/multi-doc.yaml:3:1  a second YAML document starts here; a plan file holds exactly one (remove the "---" separator)`,
    ]);
  });

  it('reports a problem inside an anchor where the anchor wrote it', async () => {
    const error = await rejection(fixture('anchors.yaml'));
    expect(error.details).toEqual([`${FIXTURES}/anchors.yaml:4:29  base.training.batch_size: expected a positive integer, received 0`]);
  });

  it('detects extends cycles and missing parents', async () => {
    const cycle = await rejection(fixture('extends/cycle-a.yaml'));
    const a = `${FIXTURES}/extends/cycle-a.yaml`;
    const b = `${FIXTURES}/extends/cycle-b.yaml`;
    expect(cycle.details).toEqual([`${b}:2:1  extends: extends cycle: ${a} → ${b} → ${a}`]);
    const orphan = await rejection(fixture('extends/missing-parent.yaml'));
    expect(orphan.details).toEqual([
      `${FIXTURES}/extends/missing-parent.yaml:2:1  extends: cannot read ${FIXTURES}/extends/nowhere.yaml: no such file`,
    ]);
  });

  it('reports a bad value in a child plan at the child, over the parent', async () => {
    const error = await rejection(fixture('extends/bad-child.yaml'));
    expect(error.details).toEqual([`${FIXTURES}/extends/bad-child.yaml:4:14  base.training.batch_size: expected a positive integer, received 0`]);
  });

  it('reports problems that come from the parent plan in the parent file', async () => {
    const lines = await problems(yaml`
      name: child
      extends: parent.yaml
    `, { files: { 'parent.yaml': 'name: parent\nbase:\n  beta: -1\n  dataset: {name: hh}\n' } });
    expect(lines).toEqual(['parent.yaml:3:3  base.beta: expected a number > 0, received -1']);
  });

  it('fails with one InputError when the plan file cannot be read', async () => {
    const error = await rejection(fixture('does-not-exist.yaml'));
    expect(error.message).toBe(`cannot read plan ${FIXTURES}/does-not-exist.yaml: no such file`);
  });
});

describe('loadPlan: hostile plans, one concern each', () => {
  it('suggests the closest key for typos, at every level', async () => {
    const lines = await problems(yaml`
      name: typos
      bsae: {}
      base:
        dataset: {name: hh, splt: train}
        training: {bacth_size: 2, learnig_rate: 1e-6}
        resources: {gpu_per_run: 1}
      sweep:
        grid: {betta: [0.1]}
        lists: []
    `);
    expect(lines).toEqual([
      'plan.yaml:2:1  bsae: unknown key — did you mean "base"?',
      'plan.yaml:4:23  base.dataset.splt: unknown key — did you mean "split"?',
      'plan.yaml:5:14  base.training.bacth_size: unknown key — did you mean "batch_size"?',
      'plan.yaml:5:29  base.training.learnig_rate: unknown key — did you mean "learning_rate"?',
      'plan.yaml:6:15  base.resources.gpu_per_run: unknown key — did you mean "gpus_per_run"?',
      'plan.yaml:8:10  sweep.grid.betta: "betta" is not a run setting — did you mean "beta"?',
      'plan.yaml:9:3  sweep.lists: unknown key — did you mean "list"?',
    ]);
  });

  it('reports an unknown key with no close match by listing what is allowed', async () => {
    expect(await problems('name: x\nbase: {dataset: {name: hh}}\nsweep: {zzz: 1}\n')).toEqual([
      'plan.yaml:3:9  sweep.zzz: unknown key — allowed here: list, grid, random, seeds',
    ]);
  });

  it('reports empty grids, duplicate variant names and bad ranges', async () => {
    const lines = await problems(yaml`
      name: sweeps
      base: {dataset: {name: hh}}
      sweep:
        list:
          - {name: a}
          - {name: b}
          - {name: a}
        grid:
          beta: []
        random:
          count: 2
          params:
            label_smoothing: {uniform: [0.4, 0.1]}
            training.learning_rate: {log_uniform: [-1, 1]}
            training.warmup_steps: {uniform: [5, 5]}
    `);
    expect(lines).toEqual([
      'plan.yaml:7:8  sweep.list[2].name: variant name "a" is already used by sweep.list[0]',
      'plan.yaml:9:5  sweep.grid.beta: empty list: the sweep would have no runs',
      'plan.yaml:13:25  sweep.random.params.label_smoothing.uniform: uniform range [0.4, 0.1] needs lo < hi',
      'plan.yaml:14:32  sweep.random.params["training.learning_rate"].log_uniform: log_uniform range [-1, 1] needs lo > 0',
      'plan.yaml:15:31  sweep.random.params["training.warmup_steps"].uniform: uniform range [5, 5] needs lo < hi',
    ]);
  });

  it('reports a setting varied by two axes', async () => {
    const lines = await problems(yaml`
      name: overlap
      base: {dataset: {name: hh}}
      sweep:
        grid: {beta: [0.1], training: [{}]}
        random: {count: 1, params: {beta: {uniform: [0.1, 0.2]}}}
        seeds: [1]
    `);
    expect(lines).toEqual([
      'plan.yaml:5:31  sweep.random.params.beta: "beta" is also varied by sweep.grid.beta; vary each setting in one place',
      'plan.yaml:6:3  sweep.seeds: "training.seed" is also varied by sweep.grid.training; vary each setting in one place',
    ]);
  });

  it('reports values a double cannot hold as written, not as zod saw them', async () => {
    const lines = await problems(yaml`
      name: numbers
      base:
        dataset: {name: hh}
        beta: 1e400
        training: {max_steps: 1180591620717411303424, seed: 99999999999999999999999, batch_size: 1e20}
    `);
    expect(lines).toEqual([
      'plan.yaml:4:3  base.beta: 1e400 is out of range (too large for a 64-bit float)',
      'plan.yaml:5:14  base.training.max_steps: 1180591620717411303424 is too large for an exact integer (at most 9007199254740991)',
      'plan.yaml:5:49  base.training.seed: 99999999999999999999999 is too large for an exact integer (at most 9007199254740991)',
      'plan.yaml:5:80  base.training.batch_size: expected a positive integer, received 100000000000000000000 (integers go up to 9007199254740991)',
    ]);
  });

  it('checks grid, list and random values in every resolved run, at the value', async () => {
    const lines = await problems(yaml`
      name: values
      base:
        dataset: {name: hh}
      sweep:
        list:
          - name: a
            algorithm: beta-dpo
            loss_type: [ipo]
          - name: b
            loss_weights: [1, 2]
        grid:
          training.scheduler: [linear, cosine, wavy]
          dataset: [{name: x, limit: 0}]
        random:
          count: 3
          params:
            training.gradient_checkpointing: {choice: [sometimes, true, auto]}
    `);
    expect(lines).toEqual([
      'plan.yaml:8:7  sweep.list[0].loss_type: loss_type [ipo] only applies to algorithm dpo (this run uses beta-dpo)',
      'plan.yaml:10:7  sweep.list[1].loss_weights: 2 loss weights for 1 loss type; give one weight per loss_type',
      'plan.yaml:12:42  sweep.grid["training.scheduler"][2]: expected one of linear | cosine | constant | constant_with_warmup, received "wavy"',
      'plan.yaml:13:25  sweep.grid.dataset[0].limit: expected a positive integer, received 0',
      'plan.yaml:17:50  sweep.random.params["training.gradient_checkpointing"].choice[0]: expected one of true | false | auto, received "sometimes"',
    ]);
  });

  it('requires exactly one dataset source per run, and stages.sft for stage:sft', async () => {
    const lines = await problems(yaml`
      name: sources
      base:
        model: stage:sft
      sweep:
        list:
          - name: none
          - name: both
            dataset: {name: hh, path: x.jsonl}
      judge: {baseline: stage:sft}
    `);
    expect(lines).toEqual([
      'plan.yaml:2:1  base.dataset: no dataset: set dataset.path (a local file) or dataset.name (a hub id)',
      'plan.yaml:3:3  base.model: model: stage:sft needs a stages.sft section',
      'plan.yaml:8:7  sweep.list[1].dataset: dataset.path and dataset.name are both set; keep one',
      'plan.yaml:9:9  judge.baseline: baseline: stage:sft needs a stages.sft section',
    ]);
  });

  it('names both runs when two resolve to the same settings', async () => {
    const lines = await problems(yaml`
      name: dupes
      base: {dataset: {name: hh}}
      sweep:
        list:
          - {name: a, beta: 0.1}
          - {name: b, beta: 0.1, resources: {gpus_per_run: 2}}
        seeds: [1, 2]
    `);
    expect(lines).toEqual([
      'plan.yaml:6:7  sweep.list[1]: runs "a-seed1" and "b-seed1" resolve to the same settings; remove one or make them differ',
    ]);
  });

  it('says when random search drew the same values twice, at sweep.random.count', async () => {
    const lines = await problems(yaml`
      name: draws
      base: {dataset: {name: hh}}
      sweep:
        random:
          count: 5
          params:
            beta: {choice: [0.1, 0.2]}
    `);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^plan\.yaml:5:5  sweep\.random\.count: random search drew the same values twice: runs "draws-beta0\.[12]" and "draws-beta0\.[12]-2" resolve to the same settings; lower the count/,
    );
  });

  it('reports a dotted key that repeats a nested one', async () => {
    const lines = await problems(yaml`
      name: twice
      base:
        dataset: {name: hh}
        training: {batch_size: 2}
        training.batch_size: 4
    `);
    expect(lines).toEqual(['plan.yaml:5:3  base["training.batch_size"]: "training.batch_size" sets a value that this mapping also writes elsewhere']);
  });

  it('reports wrong shapes for whole sections', async () => {
    const lines = await problems(yaml`
      name: shapes
      base: [1, 2]
      sweep:
        grid: {beta: 0.1}
        seeds: []
        list: {name: a}
      report: {formats: [pdf]}
    `);
    expect(lines).toEqual([
      'plan.yaml:2:1  base: expected a mapping, received [1,2]',
      'plan.yaml:4:10  sweep.grid.beta: expected a list of values, received 0.1',
      'plan.yaml:5:3  sweep.seeds: expected a non-empty list of non-negative integers, received []',
      'plan.yaml:6:3  sweep.list: expected a non-empty list of mappings, received {"name":"a"}',
      'plan.yaml:7:20  report.formats[0]: expected one of md | html | json | csv, received "pdf"',
    ]);
  });

  it('reports an empty plan and a plan that is not a mapping', async () => {
    expect(await problems('# nothing here\n')).toEqual(['plan.yaml:1:1  the plan is empty; it needs at least a name']);
    expect(await problems('- a\n- b\n')).toEqual(['plan.yaml:1:1  expected a mapping of plan keys (name, base, sweep, ...), received ["a","b"]']);
    expect(await problems('base: {dataset: {name: hh}}\n')).toEqual(['plan.yaml:1:1  name: missing (expected a name of letters, digits, ".", "_" or "-")']);
  });

  it('reports duplicate keys as positioned syntax errors', async () => {
    expect(await problems('name: a\nbase:\n  beta: 0.1\n  beta: 0.2\n')).toEqual(['plan.yaml:4:3  YAML syntax error: duplicated mapping key']);
  });

  it('returns warnings for values that never take effect', async () => {
    const { warnings } = await loadFromMemory({
      'plan.yaml': yaml`
        name: warn
        base:
          dataset: {name: hh}
          training: {max_steps: 10, epochs: 3}
        sweep:
          list: [{name: a, beta: 0.2}]
          grid: {beta: [0.1, 0.3]}
      `,
    });
    expect(warnings).toEqual([
      'plan.yaml:4:29  base.training.epochs: training.epochs is ignored because training.max_steps is set',
      'plan.yaml:6:20  sweep.list[0].beta: overridden in every run by sweep.grid.beta',
    ]);
  });
});
