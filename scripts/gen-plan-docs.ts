// npx tsx scripts/gen-plan-docs.ts
// Writes docs/plan.md from the plan and run-settings schemas (test/plan/docs.test.ts checks it is current).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderPlanDocs } from '../src/plan/docs.js';

const target = fileURLToPath(new URL('../docs/plan.md', import.meta.url));
writeFileSync(target, renderPlanDocs());
console.log(`wrote ${target}`);
