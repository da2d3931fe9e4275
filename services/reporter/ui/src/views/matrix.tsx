import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { NamespaceMatrix } from '#lumen/contracts';
import { apiGet } from '../api.js';
import {
  EXPECTED_COLOUR,
  OUTCOME_COLOUR,
  countsText,
  expectedOf,
  worst,
  type Counts,
} from '../format.js';
import { useLoad } from '../load.js';
import { href } from '../route.js';
import { Await, OutcomeBadge } from './common.js';

/** Room for the namespace names along the left and the top of the matrix. */
const HEADER = 150;

interface Cell extends Counts {
  readonly source: number;
  readonly destination: number;
}

function cellsOf(matrix: NamespaceMatrix): Cell[] {
  return matrix.cells.map(([source, destination, ...n]) => ({
    source,
    destination,
    allow: n[0] ?? 0,
    deny: n[1] ?? 0,
    pass: n[2] ?? 0,
    fail: n[3] ?? 0,
    flaky: n[4] ?? 0,
    inconclusive: n[5] ?? 0,
    unverified: n[6] ?? 0,
  }));
}

/**
 * The namespace × namespace matrix on a canvas that draws only the cells in view: 1,000
 * namespaces are 10^6 cells and no DOM node per cell. Each cell's upper-left half is what
 * the policies say (allow, deny, both), its lower-right half what was verified (the worst
 * of its cases). A click opens the pair, class × class.
 */
function MatrixCanvas(props: {
  readonly namespaces: readonly string[];
  readonly cells: readonly Cell[];
  readonly onHover: (cell: Cell | null) => void;
}) {
  const { namespaces } = props;
  const size = namespaces.length > 300 ? 6 : namespaces.length > 60 ? 12 : 22;
  const byPosition = useMemo(() => {
    const map = new Map<number, Cell>();
    for (const c of props.cells) map.set(c.source * namespaces.length + c.destination, c);
    return map;
  }, [props.cells, namespaces.length]);
  const extent = HEADER + namespaces.length * size;
  const scroller = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [view, setView] = useState({ left: 0, top: 0, width: 800, height: 600 });

  useEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const update = (): void => {
      setView({
        left: element.scrollLeft,
        top: element.scrollTop,
        width: element.clientWidth,
        height: element.clientHeight,
      });
    };
    update();
    element.addEventListener('scroll', update, { passive: true });
    const resized = new ResizeObserver(update);
    resized.observe(element);
    return () => {
      element.removeEventListener('scroll', update);
      resized.disconnect();
    };
  }, []);

  useEffect(() => {
    const element = canvas.current;
    const context = element?.getContext('2d');
    if (!element || !context) return;
    const ratio = window.devicePixelRatio || 1;
    element.width = view.width * ratio;
    element.height = view.height * ratio;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, view.width, view.height);
    const firstRow = Math.max(0, Math.floor(view.top / size));
    const firstColumn = Math.max(0, Math.floor(view.left / size));
    const rows = Math.ceil((view.height - HEADER) / size) + 1;
    const columns = Math.ceil((view.width - HEADER) / size) + 1;
    const lastRow = Math.min(namespaces.length, firstRow + rows);
    const lastColumn = Math.min(namespaces.length, firstColumn + columns);
    const x = (column: number): number => HEADER + column * size - view.left;
    const y = (row: number): number => HEADER + row * size - view.top;
    for (let row = firstRow; row < lastRow; row++)
      for (let column = firstColumn; column < lastColumn; column++) {
        const cell = byPosition.get(row * namespaces.length + column);
        const left = x(column);
        const top = y(row);
        if (!cell) {
          context.fillStyle = '#f6f8fa';
          context.fillRect(left, top, size - 1, size - 1);
          continue;
        }
        context.fillStyle = EXPECTED_COLOUR[expectedOf(cell)];
        context.beginPath();
        context.moveTo(left, top);
        context.lineTo(left + size - 1, top);
        context.lineTo(left, top + size - 1);
        context.fill();
        context.fillStyle = OUTCOME_COLOUR[worst(cell)];
        context.beginPath();
        context.moveTo(left + size - 1, top);
        context.lineTo(left + size - 1, top + size - 1);
        context.lineTo(left, top + size - 1);
        context.fill();
      }
    // Headers over the cells: sources down the left, destinations along the top.
    context.fillStyle = '#ffffff';
    context.fillRect(0, 0, view.width, HEADER);
    context.fillRect(0, 0, HEADER, view.height);
    if (size >= 12) {
      context.fillStyle = '#24292f';
      context.font = `${Math.min(12, size - 2)}px system-ui, sans-serif`;
      context.textBaseline = 'middle';
      for (let row = firstRow; row < lastRow; row++)
        context.fillText(clip(namespaces[row] ?? '', 22), 4, y(row) + size / 2, HEADER - 8);
      for (let column = firstColumn; column < lastColumn; column++) {
        context.save();
        context.translate(x(column) + size / 2, HEADER - 4);
        context.rotate(-Math.PI / 2);
        context.fillText(clip(namespaces[column] ?? '', 22), 0, 0, HEADER - 8);
        context.restore();
      }
    }
    context.fillStyle = '#57606a';
    context.font = '11px system-ui, sans-serif';
    context.fillText('from ↓  to →', 4, 12);
  }, [view, byPosition, size, namespaces]);

  const cellAt = (event: MouseEvent): Cell | null => {
    const element = scroller.current;
    if (!element) return null;
    const box = element.getBoundingClientRect();
    const px = event.clientX - box.left;
    const py = event.clientY - box.top;
    if (px < HEADER || py < HEADER) return null;
    const column = Math.floor((px - HEADER + element.scrollLeft) / size);
    const row = Math.floor((py - HEADER + element.scrollTop) / size);
    return byPosition.get(row * namespaces.length + column) ?? null;
  };
  return (
    <div
      class="matrix-scroller"
      ref={scroller}
      // A small matrix takes only its own room; a large one scrolls within 70% of the window.
      style={{ height: `min(70vh, ${extent + 2}px)` }}
      data-namespaces={namespaces.length}
      data-cell-size={size}
      data-header={HEADER}
      onMouseMove={(e) => {
        props.onHover(cellAt(e));
      }}
      onMouseLeave={() => {
        props.onHover(null);
      }}
      onClick={(e) => {
        const cell = cellAt(e);
        if (cell)
          location.hash = href({
            view: 'pair',
            source: namespaces[cell.source] ?? '',
            destination: namespaces[cell.destination] ?? '',
          });
      }}
    >
      <canvas ref={canvas} class="matrix-canvas" width={view.width} height={view.height} />
      <div class="matrix-extent" style={{ width: `${extent}px`, height: `${extent}px` }} />
    </div>
  );
}

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

export function Legend() {
  return (
    <p class="legend">
      Policies:{' '}
      {Object.entries(EXPECTED_COLOUR).map(([k, colour]) => (
        <span class="swatch">
          <i style={{ background: colour }} /> {k}
        </span>
      ))}{' '}
      · Verified:{' '}
      {Object.entries(OUTCOME_COLOUR).map(([k, colour]) => (
        <span class="swatch">
          <i style={{ background: colour }} /> {k}
        </span>
      ))}
    </p>
  );
}

export function MatrixView() {
  const loaded = useLoad('matrix', () => apiGet<NamespaceMatrix>('matrix'));
  const [hover, setHover] = useState<Cell | null>(null);
  return (
    <Await loaded={loaded}>
      {(matrix) => {
        const cells = cellsOf(matrix);
        const attention = cells
          .filter((c) => c.fail + c.flaky > 0)
          .sort((a, b) => b.fail - a.fail || b.flaky - a.flaky)
          .slice(0, 200);
        const name = (i: number): string => matrix.namespaces[i] ?? '';
        return (
          <div class="matrix">
            <h2>
              Reachability matrix: {matrix.namespaces.length} namespaces, {cells.length} pairs with
              cases
            </h2>
            <Legend />
            {matrix.truncated && (
              <p class="error">Only the busiest pairs are shown: the store holds more.</p>
            )}
            <p class="hover" aria-live="polite">
              {hover
                ? `${name(hover.source)} → ${name(hover.destination)}: ${countsText(hover)}`
                : 'Point at a cell; click it for its pod classes.'}
            </p>
            {cells.length === 0 ? (
              <p class="muted">No cases stored yet.</p>
            ) : (
              <MatrixCanvas namespaces={matrix.namespaces} cells={cells} onHover={setHover} />
            )}
            <h2>Pairs with failures</h2>
            {attention.length === 0 ? (
              <p class="muted" data-attention="0">
                None: no pair has a failing or flaky case.
              </p>
            ) : (
              <div class="attention-box">
                <table class="attention" data-attention={attention.length}>
                  <tbody>
                    {attention.map((c) => (
                      <tr>
                        <td>
                          <a
                            class="pair-link"
                            href={href({
                              view: 'pair',
                              source: name(c.source),
                              destination: name(c.destination),
                            })}
                          >
                            {name(c.source)} → {name(c.destination)}
                          </a>
                        </td>
                        <td>
                          <OutcomeBadge outcome={worst(c)} />
                        </td>
                        <td>{countsText(c)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        );
      }}
    </Await>
  );
}
