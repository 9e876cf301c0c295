// Preloaded before every test file (bunfig.toml): apps a test opened and left open are closed
// after it, and those a file's beforeAll opened after the file.

import { afterAll, afterEach, beforeEach } from "bun:test";
import { fileEnded, testEnded, testStarted } from "./harness.ts";

beforeEach(testStarted);
afterEach(testEnded);
afterAll(fileEnded);
