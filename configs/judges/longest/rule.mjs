// A rule judge module: export judge({ instruction, outputA, outputB }) returning 'a' | 'b' | 'tie'.
// Lengths are counted in Unicode code points, as the statistics do.
export function judge({ outputA, outputB }) {
  const a = [...outputA.trim()].length;
  const b = [...outputB.trim()].length;
  return a > b ? 'a' : b > a ? 'b' : 'tie';
}
