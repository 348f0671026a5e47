export { runComponent } from './component';
export type { Component, ComponentContext, RunOptions, RunningComponent } from './component';
