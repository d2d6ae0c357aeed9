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

export type DispatchSearch = { edit?: string };
export type PublisherSearch = { topic?: string; edit?: string };
export type DispatchMessageSearch = {
  topic?: string;
  attribute?: string;
  q?: string;
  from?: string;
  to?: string;
  state?: string;
  send?: string;
};
export type DeliverySearch = { state?: string; publisher?: string };
