// The same app, with Express imported (ESM).
import express from 'express';
import build from '../apps/express.cjs';
import listen from '../apps/listen.cjs';

listen(build(express, 5));
