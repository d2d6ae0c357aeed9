/** The views' URL search parameters (router.tsx validates them). */
export type TaskSearch = {
  state?: string;
  queue?: string;
  type?: string;
  key?: string;
  from?: string;
  to?: string;
  focus?: string;
};

export type ScheduleSearch = { edit?: string };
