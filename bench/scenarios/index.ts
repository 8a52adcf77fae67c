/** Every scenario, in the order `npm run bench` runs them. */
import type { Scenario } from '../lib/scenario.ts';
import { compressedScenario } from './compressed.ts';
import { forwardScenarios } from './forward.ts';
import { handshakeScenario } from './handshakes.ts';
import { herdScenario } from './herd.ts';
import { hitScenarios } from './hit.ts';
import { largeScenario } from './large.ts';
import { memoryScenario } from './memory.ts';
import { originsScenario } from './origins.ts';
import { originsTimelineScenario } from './origins-timeline.ts';
import { purgeScenario } from './purge.ts';
import { tlsScenarios } from './tls.ts';

export const SCENARIOS: readonly Scenario[] = [
  ...hitScenarios,
  compressedScenario,
  ...tlsScenarios,
  handshakeScenario,
  ...forwardScenarios,
  herdScenario,
  largeScenario,
  memoryScenario,
  purgeScenario,
  originsScenario,
  originsTimelineScenario,
];
