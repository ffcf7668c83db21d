#!/usr/bin/env node
// The `sdnode` command.
import { cpuInfo } from './index.js';

const [cmd] = process.argv.slice(2);
if (cmd === 'info' && process.argv.includes('--cpu')) {
  console.log(JSON.stringify(cpuInfo(), null, 2));
} else {
  console.error('usage: sdnode info --cpu');
  process.exitCode = 2;
}
