// Go's time.ParseDuration syntax, read into milliseconds (the clear route's argument).

import { describe, expect, test } from "bun:test";
import { GO_DURATION_PATTERN, parseGoDuration } from "../src/duration.ts";

describe("Go durations", () => {
  test.each([
    ["300ms", 300],
    ["90s", 90_000],
    ["1h30m", 5_400_000],
    ["2h45m10s", 9_910_000],
    ["1.5h", 5_400_000],
    ["1h0m0s", 3_600_000],
    ["0.5s", 500],
    [".5s", 500],
    ["1.s", 1000],
    ["1m30.25s", 90_250],
    ["10m", 600_000],
    ["72h", 259_200_000],
    ["1500us", 1.5],
    ["1500µs", 1.5],
    ["2000000ns", 2],
    ["0", 0],
    ["0s", 0],
    ["+5s", 5000],
    ["-1.5h", -5_400_000],
  ] as const)("%p is %p ms", (text, ms) => {
    expect(parseGoDuration(text)).toBe(ms);
  });

  test.each([
    "",
    "1",
    "10",
    "h",
    "ms",
    ".",
    ".s",
    "-",
    "1x",
    "1d",
    "1w",
    "1H",
    "1h30",
    "1hh",
    "1 h",
    " 1h",
    "1h ",
    "--1h",
    "1e3s",
    "0x10s",
    "NaN",
    "Infinity",
    "1h-30m",
  ])("%p is not a duration", (text) => {
    expect(parseGoDuration(text)).toBeNull();
  });

  test("the pattern the API documents accepts exactly the strings read as durations", () => {
    const pattern = new RegExp(GO_DURATION_PATTERN);
    const alphabet = ["0", "1", ".", "-", "+", "h", "m", "s", "u", "n", "µ", " ", "x"];
    const disagree: string[] = [];
    let texts = [""];
    for (let length = 1; length <= 4; length++) {
      texts = texts.flatMap((text) => alphabet.map((c) => text + c));
      for (const text of texts) {
        if (pattern.test(text) !== (parseGoDuration(text) !== null)) disagree.push(text);
      }
    }
    expect(disagree).toEqual([]);
  });
});
