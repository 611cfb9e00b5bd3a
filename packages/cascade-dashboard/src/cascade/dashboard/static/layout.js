// A task graph's layered layout, left to right (graph.js draws it): each task in the layer of
// its longest path from a task that depends on nothing; an edge spanning several layers gets
// a bend point in each layer it crosses, so it runs between the nodes, never through them; a few
// barycentre sweeps order each layer to cut crossings (the best ordering seen is kept); then
// each layer's nodes sit as near the mean of their neighbours' heights as their order and
// spacing allow (an isotonic regression per layer, exact and linear). No DOM: numbers only.
//
// The graph comes from the broker, so it may lie: a node without an id, a second node under
// one id, a dependency on a task the graph does not have, a cycle. Each is left out, counted in
// `dropped`, and the rest laid out; nothing it holds can make this loop forever.

export const NODE = { width: 160, height: 40 };   // a task's box
export const MAPPED = { width: 200, height: 76 }; // a mapped task's: its items' counts under it
const LAYER_GAP = 48;   // between a layer's boxes and the next's: room for the edges' curves
const NODE_GAP = 16;    // between two boxes of a layer
const BEND_GAP = 6;     // beside a bend point of an edge crossing a layer
const MARGIN = 8;
const SWEEPS = 8;       // barycentre sweeps at most (down, up, ...)
const PLACEMENTS = 4;   // placement passes (down, up, down, up), then one on both sides
// Bend points an edge spanning several layers gets, at most this many per node in all: past
// it (a task that every other task of a 2,000-long chain feeds), the longest edges are drawn
// straight from end to end, over what lies between, rather than let the layout grow unbounded.
const BENDS_PER_NODE = 8;

// ``graph``: {"nodes": [{"id", "name", "after": [id, ...], "map"?: true, "conditions"?: [id, ...],
// "order"?: [id, ...]}]}.
// Returns {nodes: [{id, name, map, layer, x, y, width, height}] (x, y: the box's top left),
// edges: [{from, to, condition, order, points: [[x, y], ...]}] (points: where the edge starts, passes
// each layer it crosses (entering and leaving it), and ends), width, height, crossings,
// dropped: {nodes, duplicates, unknown, cycles}}. Its layers stand side by side however many
// there are, never wrapped back below one another: the drawing is scaled to its room (graph.js).
export function layOut(graph) {
  const { nodes, edges, dropped } = readGraph(graph);
  const layerOf = longestPathLayers(nodes.length, edges, dropped);
  const layers = [];
  const vertices = nodes.map((node, index) => {
    const box = node.map ? MAPPED : NODE;
    const vertex = makeVertex(index, layerOf[index], box.height, box.width, false);
    (layers[vertex.layer] ||= []).push(vertex);
    return vertex;
  });
  const chains = bendEdges(edges, vertices, layers, nodes.length * BENDS_PER_NODE + 64);
  let best = layers.map((layer) => layer.slice());
  let fewest = crossings(best);
  // a sweep up often undoes some of the sweep down before it: stop once three in a row found
  // nothing better than the best ordering seen
  for (let sweep = 0, stale = 0; sweep < SWEEPS && fewest > 0 && stale < 3; sweep += 1) {
    orderByBarycentre(layers, sweep % 2 === 0);
    const found = crossings(layers);
    if (found < fewest) {
      fewest = found;
      best = layers.map((layer) => layer.slice());
      stale = 0;
    } else {
      stale += 1;
    }
  }
  best.forEach((layer) => layer.forEach((vertex, position) => { vertex.position = position; }));
  placeHeights(best);
  const columns = placeColumns(best);
  const { top, bottom } = extent(best);
  const dy = MARGIN - top;
  const laid = nodes.map((node, index) => {
    const v = vertices[index];
    const column = columns[v.layer];
    return { id: node.id, name: node.name, map: node.map, layer: v.layer, width: v.width, height: v.height,
      x: column.x + (column.width - v.width) / 2, y: v.y + dy - v.height / 2 };
  });
  const laidEdges = chains.map(({ edge, bends }) => {
    const from = laid[edge.from];
    const to = laid[edge.to];
    const points = [[from.x + from.width, from.y + from.height / 2]];
    for (const bend of bends) {
      const column = columns[bend.layer];
      points.push([column.x, bend.y + dy], [column.x + column.width, bend.y + dy]);
    }
    points.push([to.x, to.y + to.height / 2]);
    return { from: from.id, to: to.id, condition: edge.condition, order: edge.order, points };
  });
  const last = columns[columns.length - 1];
  return { nodes: laid, edges: laidEdges, crossings: fewest, dropped,
    width: last ? last.x + last.width + MARGIN : 2 * MARGIN, height: bottom - top + 2 * MARGIN };
}

// The topmost and bottommost edge of the boxes and bend points (0, 0 without any).
function extent(layers) {
  let top = Infinity;
  let bottom = -Infinity;
  for (const layer of layers) for (const vertex of layer) {
    top = Math.min(top, vertex.y - vertex.height / 2);
    bottom = Math.max(bottom, vertex.y + vertex.height / 2);
  }
  return isFinite(top) ? { top, bottom } : { top: 0, bottom: 0 };
}

// The nodes with a usable id (the first of each id), and their dependencies on nodes the
// graph has (a condition's edge and an order-only one marked), each once; what was left out, counted.
function readGraph(graph) {
  const dropped = { nodes: 0, duplicates: 0, unknown: 0, cycles: 0 };
  const raw = graph && Array.isArray(graph.nodes) ? graph.nodes : [];
  const nodes = [];
  const index = new Map();
  for (const node of raw) {
    if (!node || typeof node.id !== "string" || node.id === "") { dropped.nodes += 1; continue; }
    if (index.has(node.id)) { dropped.duplicates += 1; continue; }
    index.set(node.id, nodes.length);
    nodes.push({ id: node.id, name: typeof node.name === "string" && node.name ? node.name : node.id,
      map: node.map === true, after: Array.isArray(node.after) ? node.after : [],
      conditions: new Set(Array.isArray(node.conditions) ? node.conditions : []),
      order: new Set(Array.isArray(node.order) ? node.order : []) });
  }
  const edges = [];
  nodes.forEach((node, to) => {
    const seen = new Set();
    for (const id of node.after) {
      const from = index.get(id);
      if (from === undefined) { dropped.unknown += 1; continue; }
      if (from === to) { dropped.cycles += 1; continue; }
      if (seen.has(from)) continue;
      seen.add(from);
      edges.push({ from, to, condition: node.conditions.has(id), order: node.order.has(id) });
    }
  });
  return { nodes, edges, dropped };
}

// Each node's layer: one past its furthest dependency's (Kahn's order). Where a cycle leaves
// no node free, the earliest node left goes next and its edges from nodes not yet placed are
// dropped (counted): the engine never sends a cycle, so the rest of such a graph is drawn.
function longestPathLayers(count, edges, dropped) {
  const incoming = Array.from({ length: count }, () => []);
  const outgoing = Array.from({ length: count }, () => []);
  for (const edge of edges) {
    incoming[edge.to].push(edge);
    outgoing[edge.from].push(edge);
  }
  const waiting = incoming.map((list) => list.length);
  const layer = new Array(count).fill(0);
  const placed = new Array(count).fill(false);
  const ready = [];
  for (let v = 0; v < count; v += 1) if (!waiting[v]) ready.push(v);
  let next = 0;   // the earliest node not yet placed, for breaking a cycle
  let done = 0;
  while (done < count) {
    if (!ready.length) {
      while (placed[next] || waiting[next] === 0) next += 1;
      for (const edge of incoming[next]) {
        if (!placed[edge.from] && !edge.dropped) {
          edge.dropped = true;
          dropped.cycles += 1;
        }
      }
      waiting[next] = 0;
      ready.push(next);
    }
    const v = ready.pop();
    if (placed[v]) continue;
    placed[v] = true;
    done += 1;
    for (const edge of incoming[v]) if (!edge.dropped) layer[v] = Math.max(layer[v], layer[edge.from] + 1);
    for (const edge of outgoing[v]) {
      if (edge.dropped || placed[edge.to]) continue;
      waiting[edge.to] -= 1;
      if (waiting[edge.to] === 0) ready.push(edge.to);
    }
  }
  for (let i = edges.length - 1; i >= 0; i -= 1) if (edges[i].dropped) edges.splice(i, 1);
  return layer;
}

// Each edge as a chain of vertices, a bend point in every layer it crosses (shortest edges
// first, within the budget); neighbours in adjacent layers linked both ways for the sweeps.
function bendEdges(edges, vertices, layers, budget) {
  const chains = [];
  const bySpan = edges.map((edge, order) => ({ edge, order, span: vertices[edge.to].layer - vertices[edge.from].layer }))
    .sort((a, b) => a.span - b.span);
  for (const { edge, order, span } of bySpan) {
    const bends = [];
    if (span - 1 <= budget) {
      budget -= span - 1;
      let previous = vertices[edge.from];
      for (let layer = previous.layer + 1; layer < vertices[edge.to].layer; layer += 1) {
        const bend = makeVertex(-1, layer, 0, 0, true);
        bend.up.push(previous);
        previous.down.push(bend);
        layers[layer].push(bend);
        bends.push(bend);
        previous = bend;
      }
      previous.down.push(vertices[edge.to]);
      vertices[edge.to].up.push(previous);
    }
    chains[order] = { edge, bends }; // in the graph's order, whatever their spans
  }
  return chains;
}

// A vertex of the layout: a task's box, or an edge's bend point (one shape for both, which
// keeps the sweeps' loops fast).
function makeVertex(index, layer, height, width, bend) {
  return { index, layer, height, width, bend, up: [], down: [], position: 0, weight: 0, y: 0 };
}

function total(near, key) {
  let sum = 0;
  for (let i = 0; i < near.length; i += 1) sum += near[i][key];
  return sum;
}

function number(layers) {
  for (const layer of layers) layer.forEach((vertex, position) => { vertex.position = position; });
}

// One sweep: each layer (from the second, or from the last but one going up) sorted by the
// mean position of its neighbours in the layer before it; a vertex with none keeps its own.
function orderByBarycentre(layers, down) {
  number(layers);
  const order = down ? layers.map((_, i) => i).slice(1) : layers.map((_, i) => i).reverse().slice(1);
  for (const i of order) {
    const layer = layers[i];
    for (const vertex of layer) {
      const near = down ? vertex.up : vertex.down;
      vertex.weight = near.length ? total(near, "position") / near.length : vertex.position;
    }
    layer.sort((a, b) => a.weight - b.weight || a.position - b.position);
    layer.forEach((vertex, position) => { vertex.position = position; });
  }
}

// Crossings between each pair of adjacent layers: the inversions among the edges' lower ends
// once sorted by their upper ends, counted with a Fenwick tree (O(E log V)).
function crossings(layers) {
  number(layers);
  let total = 0;
  for (let i = 0; i + 1 < layers.length; i += 1) {
    const ends = [];
    for (const vertex of layers[i]) for (const next of vertex.down) ends.push([vertex.position, next.position]);
    ends.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const size = layers[i + 1].length;
    const tree = new Array(size + 1).fill(0);
    let seen = 0;
    for (const [, lower] of ends) {
      let below = 0;  // ends so far at or above this one's lower position
      for (let k = lower + 1; k > 0; k -= k & -k) below += tree[k];
      total += seen - below;
      for (let k = lower + 1; k <= size; k += k & -k) tree[k] += 1;
      seen += 1;
    }
  }
  return total;
}

// The vertices' heights (y: their middles): first stacked and centred per layer, then moved,
// a layer at a time, as near the mean of their neighbours' as the layer's order and spacing
// allow; the last pass heeds both sides.
function placeHeights(layers) {
  for (const layer of layers) {
    let y = 0;
    layer.forEach((vertex, i) => {
      if (i) y += gap(layer[i - 1], vertex);
      vertex.y = y;
    });
    for (const vertex of layer) vertex.y -= y / 2;
  }
  const indices = layers.map((_, i) => i);
  for (let pass = 0; pass <= PLACEMENTS; pass += 1) {
    const both = pass === PLACEMENTS;
    const down = pass % 2 === 0;
    for (const i of down ? indices : indices.slice().reverse()) {
      const layer = layers[i];
      const wanted = layer.map((vertex) => {
        const { up, down: below } = vertex;
        const count = (both || down ? up.length : 0) + (both || !down ? below.length : 0);
        if (!count) return vertex.y;
        return ((both || down ? total(up, "y") : 0) + (both || !down ? total(below, "y") : 0)) / count;
      });
      fit(layer, wanted);
    }
  }
}

function gap(a, b) {
  return (a.height + b.height) / 2 + (a.bend || b.bend ? BEND_GAP : NODE_GAP);
}

// The heights nearest (least squares) to those wanted that keep the layer's order and gaps:
// with z = y less the gaps before it, z must not decrease, which the pool-adjacent-violators
// algorithm solves exactly in one pass.
function fit(layer, wanted) {
  const offsets = [];
  let offset = 0;
  layer.forEach((vertex, i) => {
    if (i) offset += gap(layer[i - 1], vertex);
    offsets.push(offset);
  });
  const blocks = []; // [sum, count]
  for (let i = 0; i < layer.length; i += 1) {
    let block = [wanted[i] - offsets[i], 1];
    while (blocks.length) {
      const last = blocks[blocks.length - 1];
      if (last[0] / last[1] <= block[0] / block[1]) break;
      blocks.pop();
      block = [last[0] + block[0], last[1] + block[1]];
    }
    blocks.push(block);
  }
  let i = 0;
  for (const [sum, count] of blocks) {
    for (let k = 0; k < count; k += 1, i += 1) layer[i].y = sum / count + offsets[i];
  }
}

// Each layer's column: as wide as its widest box, after the last one's and a gap.
function placeColumns(layers) {
  let x = MARGIN;
  return layers.map((layer) => {
    const width = layer.reduce((widest, vertex) => Math.max(widest, vertex.width), 0);
    const column = { x, width };
    x += width + LAYER_GAP;
    return column;
  });
}
