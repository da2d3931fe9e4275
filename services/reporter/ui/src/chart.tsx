import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** A uPlot chart that follows its options and data, and is destroyed with the view. */
export function Chart(props: {
  readonly options: Omit<uPlot.Options, 'width' | 'height'>;
  readonly data: uPlot.AlignedData;
  readonly height: number;
  readonly label: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const chart = new uPlot(
      { ...props.options, width: Math.max(240, element.clientWidth), height: props.height },
      props.data,
      element,
    );
    const resized = new ResizeObserver(() => {
      chart.setSize({ width: Math.max(240, element.clientWidth), height: props.height });
    });
    resized.observe(element);
    return () => {
      resized.disconnect();
      chart.destroy();
    };
  }, [props.options, props.data, props.height]);
  return <div class="chart" ref={box} role="img" aria-label={props.label} />;
}
